// One page of images by id, with code and community (keyset paging: ids after $after).
// Params: $after (STRING, '' for the first page), $limit (INTEGER).
// Returns: id (STRING), code (LIST<FLOAT>), community (INTEGER or null).
MATCH (i:Image)
WHERE i.id > $after
RETURN i.id AS id, i.code AS code, i.community AS community
ORDER BY i.id
LIMIT $limit
