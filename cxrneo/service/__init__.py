"""The query service: the searcher (which archived X-rays look like this one?), the one query request,
its client, bounded workers, and the pictures it serves (display PNGs, similarity overlays)."""
