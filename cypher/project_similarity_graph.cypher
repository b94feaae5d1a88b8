// Project Image nodes and SIMILAR edges, read undirected, into the GDS catalog.
// Params: $graph (STRING, unique per run), $nodeProperties (LIST<STRING>: [] or ['community']).
// Returns: nodeCount, relationshipCount.
CALL gds.graph.project($graph, 'Image', {SIMILAR: {orientation: 'UNDIRECTED'}},
                       {nodeProperties: $nodeProperties})
YIELD nodeCount, relationshipCount
RETURN nodeCount, relationshipCount
