// For Neo4j Browser (the viewer's "open in Neo4j Browser" link; cxrneo never runs it): the given
// images and the SIMILAR edges among them. Params: $ids (LIST<STRING>), written into the link as a list.
// Returns: i, s, j (nodes and relationships for Browser's graph view).
MATCH (i:Image) WHERE i.id IN $ids
OPTIONAL MATCH (i)-[s:SIMILAR]-(j:Image) WHERE j.id IN $ids
RETURN i, s, j
