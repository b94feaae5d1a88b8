// Drop a GDS projection if it exists. Params: $graph (STRING). Returns: graphName.
CALL gds.graph.drop($graph, false) YIELD graphName
RETURN graphName
