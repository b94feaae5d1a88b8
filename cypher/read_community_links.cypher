// Edge counts between communities (LINKED, stored smaller id -> larger). Params: none.
// Returns: a (INTEGER), b (INTEGER), edges (INTEGER).
MATCH (a:Community)-[r:LINKED]->(b:Community)
RETURN a.id AS a, b.id AS b, r.edges AS edges
