// SIMILAR edges per (community of source, community of target).
// Params: none. Returns: a (INTEGER), b (INTEGER), edges (INTEGER).
MATCH (x:Image)-[:SIMILAR]->(y:Image)
RETURN x.community AS a, y.community AS b, count(*) AS edges
