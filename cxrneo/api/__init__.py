"""The HTTP API of `cxrneo serve` (FastAPI): the app, its routers by concern, the one dependency seam
through which every route gets the searcher, the caller and the settings, and the request gate."""
