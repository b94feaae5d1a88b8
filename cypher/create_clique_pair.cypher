// Test fixture: two cliques of $size :SmokeNode nodes joined by a single edge.
// params: $size (INTEGER)
// returns: nothing
UNWIND range(0, 2 * $size - 1) AS i
CREATE (:SmokeNode {i: i, clique: i / $size})
WITH count(*) AS made
MATCH (a:SmokeNode), (b:SmokeNode)
WHERE a.i < b.i AND (a.clique = b.clique OR (a.i = 0 AND b.i = $size))
CREATE (a)-[:SMOKE_EDGE]->(b)
