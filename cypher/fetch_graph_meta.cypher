// The GraphMeta node, if any. Params: none.
// Returns: threshold, nodes, edges, generation, communityGeneration, codesSha256, graphId.
MATCH (m:GraphMeta {key: 'main'})
RETURN m.threshold AS threshold, m.nodes AS nodes, m.edges AS edges, m.generation AS generation,
       m.communityGeneration AS communityGeneration, m.codesSha256 AS codesSha256, m.graphId AS graphId
