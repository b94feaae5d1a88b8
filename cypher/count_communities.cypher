// Verify a community run: Community nodes, LINKED edges and images without a community.
// Params: none. Returns: communities, linked, unassigned (INTEGER).
CALL () { MATCH (c:Community) RETURN count(c) AS communities }
CALL () { MATCH ()-[r:LINKED]->() RETURN count(r) AS linked }
CALL () { MATCH (i:Image) WHERE i.community IS NULL RETURN count(i) AS unassigned }
RETURN communities, linked, unassigned
