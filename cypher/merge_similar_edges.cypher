// Create SIMILAR edges unless present (idempotent; for partly stored sources).
// Params: $rows = [{a: elementId of the smaller id, bs: [elementId of larger ids], cs: [cosine]}].
// Returns: written (INTEGER).
UNWIND $rows AS row
MATCH (a:Image) WHERE elementId(a) = row.a
UNWIND range(0, size(row.bs) - 1) AS k
MATCH (b:Image) WHERE elementId(b) = row.bs[k]
MERGE (a)-[r:SIMILAR]->(b)
SET r.cosine = row.cs[k]
RETURN count(*) AS written
