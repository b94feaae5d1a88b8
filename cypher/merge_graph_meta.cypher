// Record the graph after an ingest; generation grows by $bump (0 or 1). A new graph gets a
// random graphId (caches of its snapshots are keyed by it).
// Params: $threshold (FLOAT), $nodes, $edges, $bump (INTEGER), $codesSha256 (STRING).
// Returns: generation (INTEGER), communityGeneration (INTEGER).
MERGE (m:GraphMeta {key: 'main'})
ON CREATE SET m.generation = 0, m.communityGeneration = 0, m.graphId = randomUUID()
SET m.threshold = $threshold, m.nodes = $nodes, m.edges = $edges,
    m.codesSha256 = $codesSha256, m.generation = m.generation + $bump,
    m.graphId = coalesce(m.graphId, randomUUID())
RETURN m.generation AS generation, m.communityGeneration AS communityGeneration
