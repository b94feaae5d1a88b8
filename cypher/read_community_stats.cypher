// Every community's statistics. Params: none.
// Returns: id (INTEGER), n (INTEGER nodes), l (INTEGER internal edges), d (INTEGER degree sum).
MATCH (c:Community)
RETURN c.id AS id, c.n AS n, c.l AS l, c.d AS d
