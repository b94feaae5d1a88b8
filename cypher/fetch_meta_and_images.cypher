// GraphMeta with the stored counts (as fetch_graph_meta) and the records of the given images, in one
// statement: an answer computed on the generation open in memory checks that GraphMeta still names it and
// reads its hits' records in one round trip. No row when there is no GraphMeta.
// Params: $ids (LIST<STRING>).
// Returns: the columns of fetch_graph_meta, and images (LIST<MAP>: id, labels, patientId, view, sex, age,
//          studyUid, seriesUid of those of $ids that exist).
MATCH (m:GraphMeta {key: 'main'})
CALL () { MATCH (i:Image) RETURN count(i) AS storedNodes }
CALL () { MATCH ()-[r:SIMILAR]->() RETURN count(r) AS storedEdges }
CALL () { MATCH (c:Community) RETURN count(c) AS storedCommunities }
CALL () { MATCH ()-[r:LINKED]->() RETURN count(r) AS storedLinked }
CALL () {
  UNWIND $ids AS id
  MATCH (i:Image {id: id})
  RETURN collect(i {.id, .labels, .patientId, .view, .sex, .age, .studyUid, .seriesUid}) AS images
}
RETURN m.threshold AS threshold, m.nodes AS nodes, m.edges AS edges, m.generation AS generation,
       m.communityGeneration AS communityGeneration, m.codesSha256 AS codesSha256,
       m.transformSha256 AS transformSha256, m.graphId AS graphId,
       m.dataGeneration AS dataGeneration,
       m.writing AS writing, m.communities AS communities, m.linked AS linked,
       m.communitySeeded AS communitySeeded,
       storedNodes, storedEdges, storedCommunities, storedLinked, images
