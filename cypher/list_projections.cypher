// Names of the GDS projections in the catalog. Params: none. Returns: graphName (STRING).
CALL gds.graph.list() YIELD graphName
RETURN graphName
