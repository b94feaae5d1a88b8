// Smoke test of GDS: project :SmokeNode/:SMOKE_EDGE undirected, Louvain-write, drop, read back.
// params: $graph (STRING, a fresh projection name)
// returns: clique (INTEGER), community (INTEGER), one row per node
CALL gds.graph.project($graph, 'SmokeNode', {SMOKE_EDGE: {orientation: 'UNDIRECTED'}}) YIELD graphName
CALL gds.louvain.write(graphName, {writeProperty: 'smokeCommunity', concurrency: 1}) YIELD communityCount
CALL gds.graph.drop(graphName, false) YIELD graphName AS dropped
MATCH (n:SmokeNode)
RETURN n.clique AS clique, n.smokeCommunity AS community
