// Louvain (plain modularity, unweighted) written to Image.community.
// Params: $graph (STRING), $config (MAP: writeProperty, concurrency, optional seedProperty).
// Returns: communityCount, modularity, ranLevels, nodePropertiesWritten.
CALL gds.louvain.write($graph, $config)
YIELD communityCount, modularity, ranLevels, nodePropertiesWritten
RETURN communityCount, modularity, ranLevels, nodePropertiesWritten
