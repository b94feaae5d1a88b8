// The GraphMeta node, if any, with the stored counts to compare against it (count store reads).
// Params: none.
// Returns: threshold, nodes, edges, generation, communityGeneration, codesSha256, transformSha256 (STRING or
//          null: the CodeTransform of the stored codes), graphId, dataGeneration,
//          writing (STRING or null: 'ingest' / 'communities' while one runs or after it was killed),
//          communities, linked (INTEGER or null: counts written by the last complete community run),
//          communitySeeded (BOOLEAN or null: whether the last community run that began was seeded),
//          storedNodes, storedEdges, storedCommunities, storedLinked (INTEGER: what the database holds).
MATCH (m:GraphMeta {key: 'main'})
CALL () { MATCH (i:Image) RETURN count(i) AS storedNodes }
CALL () { MATCH ()-[r:SIMILAR]->() RETURN count(r) AS storedEdges }
CALL () { MATCH (c:Community) RETURN count(c) AS storedCommunities }
CALL () { MATCH ()-[r:LINKED]->() RETURN count(r) AS storedLinked }
RETURN m.threshold AS threshold, m.nodes AS nodes, m.edges AS edges, m.generation AS generation,
       m.communityGeneration AS communityGeneration, m.codesSha256 AS codesSha256,
       m.transformSha256 AS transformSha256, m.graphId AS graphId,
       m.dataGeneration AS dataGeneration,
       m.writing AS writing, m.communities AS communities, m.linked AS linked,
       m.communitySeeded AS communitySeeded,
       storedNodes, storedEdges, storedCommunities, storedLinked
