// Stored images worth querying in a demo: with at least one finding and the most neighbours.
// params: $n (INTEGER)
// returns: id (STRING), degree (INTEGER)
MATCH (i:Image) WHERE size(i.labels) > 0
WITH i, COUNT { (i)-[:SIMILAR]-() } AS degree
WHERE degree > 0
RETURN i.id AS id, degree
ORDER BY degree DESC, id
LIMIT $n
