// One page of images by id for a local snapshot: code (float32 bytes, or the float list when a
// graph predates codeBytes), patient, the filter columns and out-neighbours (SIMILAR is stored
// smaller id -> larger id).
// Params: $after (STRING, '' for the first page), $limit (INTEGER).
// Returns: id (STRING), patientId (STRING), labels (LIST<STRING>), view, sex (STRING), age (INTEGER),
//          split (STRING), codeBytes (BYTES or null), code (LIST<FLOAT> or null), out (LIST<STRING>).
MATCH (i:Image)
WHERE i.id > $after
WITH i ORDER BY i.id LIMIT $limit
RETURN i.id AS id, i.patientId AS patientId, i.labels AS labels, i.view AS view, i.sex AS sex,
       i.age AS age, i.split AS split, i.codeBytes AS codeBytes,
       CASE WHEN i.codeBytes IS NULL THEN i.code END AS code,
       [(i)-[:SIMILAR]->(n:Image) | n.id] AS out
