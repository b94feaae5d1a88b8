// At the verified end of a community run: communities are current (communityGeneration =
// generation), their counts are recorded and the graph is safe to read again.
// Params: $communities (INTEGER: Community nodes), $linked (INTEGER: LINKED edges).
// Returns: generation (INTEGER).
MATCH (m:GraphMeta {key: 'main'})
SET m.communityGeneration = m.generation, m.writing = null, m.communities = $communities,
    m.linked = $linked
RETURN m.generation AS generation
