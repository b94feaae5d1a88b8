// Community of every image that has one. Params: none. Returns: id (STRING), community (INTEGER).
MATCH (i:Image) WHERE i.community IS NOT NULL
RETURN i.id AS id, i.community AS community
