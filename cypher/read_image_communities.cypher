// Every image id with its community, in id order. Params: none.
// Returns: id (STRING), community (INTEGER or null).
MATCH (i:Image)
RETURN i.id AS id, i.community AS community
ORDER BY i.id
