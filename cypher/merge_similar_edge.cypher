// One SIMILAR edge by image ids, unless present (the per-row baseline of scripts/bench_build.py).
// Params: $a (STRING, smaller id), $b (STRING, larger id), $cosine (FLOAT). Returns: nothing.
MATCH (a:Image {id: $a})
MATCH (b:Image {id: $b})
MERGE (a)-[r:SIMILAR]->(b)
SET r.cosine = $cosine
