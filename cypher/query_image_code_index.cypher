// The stored images nearest a code through the optional vector index image_code (approximate): the
// Browser guide's "Similar images by code"; cxrneo itself never needs the index.
// Params: $code (LIST<FLOAT>, 1024 values), $k (INTEGER).
// Returns: id (STRING), score (FLOAT: (1 + cosine) / 2), best first.
CALL db.index.vector.queryNodes('image_code', $k, $code) YIELD node, score
RETURN node.id AS id, score
ORDER BY score DESC, id
