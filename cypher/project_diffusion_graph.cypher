// Project Image nodes and SIMILAR edges, undirected, with their cosine, for diffusion (kept).
// Params: $graph (STRING). Returns: nodeCount, relationshipCount.
CALL gds.graph.project($graph, 'Image', {SIMILAR: {orientation: 'UNDIRECTED', properties: ['cosine']}})
YIELD nodeCount, relationshipCount
RETURN nodeCount, relationshipCount
