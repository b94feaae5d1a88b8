// GDS's own memory estimate of Louvain (write mode) on a graph of the given size (a fictitious
// graph of Image nodes and undirected SIMILAR relationships; nothing is projected or written).
// Params: $nodeCount, $relationshipCount (INTEGER).
// Returns: requiredMemory (STRING), bytesMin, bytesMax (INTEGER).
CALL gds.louvain.write.estimate(
  {nodeProjection: 'Image', relationshipProjection: {SIMILAR: {orientation: 'UNDIRECTED'}},
   nodeCount: $nodeCount, relationshipCount: $relationshipCount},
  {writeProperty: 'community'})
YIELD requiredMemory, bytesMin, bytesMax
RETURN requiredMemory, bytesMin, bytesMax
