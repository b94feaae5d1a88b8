// One page of images by id for a local snapshot: code (float32 bytes, or the float list when a
// graph predates codeBytes), the filter columns and out-neighbours (SIMILAR is stored smaller
// id -> larger id).
// Params: $after (STRING, '' for the first page), $limit (INTEGER), $columns (LIST<STRING>: the
//         properties of the filter columns, cxrneo.filters.COLUMNS).
// Returns: id (STRING), columns (LIST: each property's value, in the order of $columns),
//          codeBytes (BYTES or null), code (LIST<FLOAT> or null), out (LIST<STRING>).
MATCH (i:Image)
WHERE i.id > $after
WITH i ORDER BY i.id LIMIT $limit
RETURN i.id AS id, [p IN $columns | i[p]] AS columns, i.codeBytes AS codeBytes,
       CASE WHEN i.codeBytes IS NULL THEN i.code END AS code,
       [(i)-[:SIMILAR]->(n:Image) | n.id] AS out
