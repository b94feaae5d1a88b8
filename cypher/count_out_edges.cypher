// Outgoing SIMILAR edges of every image that has some.
// Params: none. Returns: id (STRING), out (INTEGER).
MATCH (i:Image)
WITH i, COUNT { (i)-[:SIMILAR]->() } AS out
WHERE out > 0
RETURN i.id AS id, out
