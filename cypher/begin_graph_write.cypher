// Before the first write of an ingest into an existing graph or of a community run: mark the
// graph unsafe to read and move generation on (readers refuse until the writer's verified end).
// Params: $writing (STRING: 'ingest' or 'communities'), $seeded (BOOLEAN: a seeded community run).
// Returns: generation (INTEGER).
MATCH (m:GraphMeta {key: 'main'})
SET m.writing = $writing, m.generation = m.generation + 1,
    m.communitySeeded = CASE WHEN $writing = 'communities' THEN $seeded ELSE m.communitySeeded END
RETURN m.generation AS generation
