// Remove GraphMeta first, so that readers refuse while the rest is deleted (db reset).
// Params: none. Returns: nothing.
MATCH (m:GraphMeta) DELETE m
