// Stored graph size. Params: none. Returns: nodes (INTEGER), edges (INTEGER).
CALL () { MATCH (i:Image) RETURN count(i) AS nodes }
CALL () { MATCH ()-[r:SIMILAR]->() RETURN count(r) AS edges }
RETURN nodes, edges
