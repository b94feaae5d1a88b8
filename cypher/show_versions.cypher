// The server's Neo4j and Graph Data Science versions.
// params: none
// returns: neo4j (STRING), edition (STRING), gds (STRING)
CALL dbms.components() YIELD name, versions, edition
WHERE name = 'Neo4j Kernel'
RETURN versions[0] AS neo4j, edition, gds.version() AS gds
