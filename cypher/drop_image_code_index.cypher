// Drop the vector index on Image.code (tests: prove a fresh ingest builds it again).
// params: none
// returns: nothing
DROP INDEX image_code IF EXISTS
