// The sizes of one GDS projection; no row when the catalog has none of that name.
// Params: $graph (STRING). Returns: nodeCount, relationshipCount (INTEGER).
CALL gds.graph.list($graph) YIELD nodeCount, relationshipCount
RETURN nodeCount, relationshipCount
