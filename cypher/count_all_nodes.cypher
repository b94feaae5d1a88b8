// Every node of the database, whatever its label (bulk import refuses a non-empty database).
// Params: none. Returns: nodes (INTEGER).
MATCH (n) RETURN count(n) AS nodes
