// Every SIMILAR edge as stored. Params: none. Returns: a (STRING), b (STRING), cosine (FLOAT).
MATCH (x:Image)-[r:SIMILAR]->(y:Image)
RETURN x.id AS a, y.id AS b, r.cosine AS cosine
