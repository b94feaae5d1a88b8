// Mark communities current: communityGeneration = generation.
// Params: none. Returns: generation (INTEGER).
MATCH (m:GraphMeta {key: 'main'})
SET m.communityGeneration = m.generation
RETURN m.generation AS generation
