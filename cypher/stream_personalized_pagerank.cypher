// Personalized PageRank from seed images over a kept projection (gds.pageRank.stream, sourceNodes).
// Params: $graph (STRING), $seeds (LIST<STRING> image ids), $dampingFactor (FLOAT = 1 - restart),
//   $maxIterations (INTEGER), $tolerance (FLOAT), $weightProperty (STRING 'cosine' or null: unweighted),
//   $limit (INTEGER: the highest scores only).
// Returns: id (STRING), score (FLOAT > 0), highest first.
MATCH (s:Image) WHERE s.id IN $seeds
WITH collect(s) AS sources
CALL gds.pageRank.stream($graph, {
  sourceNodes: sources, dampingFactor: $dampingFactor, maxIterations: $maxIterations,
  tolerance: $tolerance, relationshipWeightProperty: $weightProperty
})
YIELD nodeId, score
WITH nodeId, score WHERE score > 0
ORDER BY score DESC
LIMIT $limit
RETURN gds.util.asNode(nodeId).id AS id, score
