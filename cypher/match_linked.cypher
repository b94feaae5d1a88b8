// Every LINKED edge. Params: none. Returns: a (INTEGER, smaller id), b (INTEGER), edges (INTEGER).
MATCH (x:Community)-[r:LINKED]->(y:Community)
RETURN x.id AS a, y.id AS b, r.edges AS edges
