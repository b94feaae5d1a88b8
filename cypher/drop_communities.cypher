// Delete every Community node and its LINKED edges. Params: none. Returns: nothing.
MATCH (c:Community) DETACH DELETE c
