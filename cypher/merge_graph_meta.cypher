// Record the graph at the verified end of an ingest and mark it safe to read again
// (an interrupted community run stays marked). generation grows by $bump (1 for a new graph; an ingest into an existing
// graph moved it on in begin_graph_write). A new graph gets a random graphId (caches of its
// snapshots are keyed by it). dataGeneration = the generation at which images or edges last
// changed (community runs move generation on but not it; local snapshots of codes and edges are
// keyed by it).
// A codes file without a checkpoint hash ('') keeps the stored one (it never switches the model check off).
// Params: $threshold (FLOAT), $nodes, $edges, $bump (INTEGER), $codesSha256 (STRING),
// $transformSha256 (STRING: the stored codes' CodeTransform, '' for raw codes).
// Returns: generation (INTEGER), communityGeneration (INTEGER).
MERGE (m:GraphMeta {key: 'main'})
ON CREATE SET m.generation = 0, m.communityGeneration = 0, m.graphId = randomUUID()
WITH m, m.generation + $bump AS g,
     (m.writing = 'ingest' OR $bump > 0 OR m.dataGeneration IS NULL) AS changed
SET m.threshold = $threshold, m.nodes = $nodes, m.edges = $edges,
    m.codesSha256 = CASE WHEN $codesSha256 = '' THEN coalesce(m.codesSha256, '') ELSE $codesSha256 END,
    m.transformSha256 = $transformSha256, m.generation = g,
    m.dataGeneration = CASE WHEN changed THEN g ELSE m.dataGeneration END,
    m.graphId = coalesce(m.graphId, randomUUID()),
    m.writing = CASE WHEN m.writing = 'ingest' THEN null ELSE m.writing END
RETURN m.generation AS generation, m.communityGeneration AS communityGeneration
