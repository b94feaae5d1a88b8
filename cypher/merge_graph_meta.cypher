// Record the graph after an ingest; generation grows by $bump (0 or 1).
// Params: $threshold (FLOAT), $nodes, $edges, $bump (INTEGER), $codesSha256 (STRING).
// Returns: generation (INTEGER), communityGeneration (INTEGER).
MERGE (m:GraphMeta {key: 'main'})
ON CREATE SET m.generation = 0, m.communityGeneration = 0
SET m.threshold = $threshold, m.nodes = $nodes, m.edges = $edges,
    m.codesSha256 = $codesSha256, m.generation = m.generation + $bump
RETURN m.generation AS generation, m.communityGeneration AS communityGeneration
