// Images per community. Params: none. Returns: community (INTEGER), n (INTEGER).
MATCH (i:Image)
RETURN i.community AS community, count(*) AS n
