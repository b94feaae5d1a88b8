// The members of one community and all their SIMILAR neighbours, read undirected.
// Params: $community (INTEGER). Returns: id (STRING), neighbours (LIST<STRING>).
MATCH (i:Image {community: $community})
OPTIONAL MATCH (i)-[:SIMILAR]-(n:Image)
RETURN i.id AS id, collect(n.id) AS neighbours
