// Every materialised community. Params: none. Returns: id, n, l, d (INTEGER).
MATCH (c:Community)
RETURN c.id AS id, c.n AS n, c.l AS l, c.d AS d
