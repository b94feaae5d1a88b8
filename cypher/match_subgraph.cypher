// The SIMILAR edges among the given images, each pair once. Params: $ids (LIST<STRING>).
// Returns: source (STRING), target (STRING), cosine (FLOAT).
MATCH (a:Image)-[s:SIMILAR]-(b:Image)
WHERE a.id IN $ids AND b.id IN $ids AND a.id < b.id
RETURN a.id AS source, b.id AS target, s.cosine AS cosine
ORDER BY source, target
