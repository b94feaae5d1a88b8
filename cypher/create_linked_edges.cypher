// LINKED edges between communities (smaller id -> larger) with their SIMILAR edge count.
// Params: $rows = [{a, b, edges}]. Returns: written (INTEGER).
UNWIND $rows AS row
MATCH (a:Community {id: row.a})
MATCH (b:Community {id: row.b})
CREATE (a)-[:LINKED {edges: row.edges}]->(b)
RETURN count(*) AS written
