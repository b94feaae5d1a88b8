// Create SIMILAR edges of source images that have none yet (no duplicate possible).
// Rows are grouped by source and address nodes by elementId (fetched right before).
// Params: $rows = [{a: elementId of the smaller id, bs: [elementId of larger ids], cs: [cosine]}].
// Returns: written (INTEGER).
UNWIND $rows AS row
MATCH (a:Image) WHERE elementId(a) = row.a
UNWIND range(0, size(row.bs) - 1) AS k
MATCH (b:Image) WHERE elementId(b) = row.bs[k]
CREATE (a)-[:SIMILAR {cosine: row.cs[k]}]->(b)
RETURN count(*) AS written
