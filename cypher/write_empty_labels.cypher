// After a bulk import: images without findings get labels = [] (the importer leaves an empty
// array field unset; plain ingest stores []). Params: none. Returns: nothing.
MATCH (i:Image) WHERE i.labels IS NULL
CALL (i) { SET i.labels = [] } IN TRANSACTIONS OF 10000 ROWS
