// Every node of the database but the writer lease (bulk import refuses a non-empty database).
// Params: none. Returns: nodes (INTEGER).
MATCH (n) WHERE NOT n:WriterLease RETURN count(n) AS nodes
