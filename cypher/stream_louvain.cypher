// Louvain (plain modularity, unweighted) streamed, nothing written: the same algorithm and
// defaults as write_louvain.
// Params: $graph (STRING), $config (MAP: concurrency).
// Returns: nodeId (INTEGER: the id the node was projected with), communityId (INTEGER).
CALL gds.louvain.stream($graph, $config)
YIELD nodeId, communityId
RETURN nodeId, communityId
