// Materialise Community nodes. Params: $rows = [{id, n, l, d}]. Returns: written (INTEGER).
UNWIND $rows AS row
CREATE (:Community {id: row.id, n: row.n, l: row.l, d: row.d})
RETURN count(*) AS written
