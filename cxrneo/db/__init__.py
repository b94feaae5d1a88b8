"""Everything that talks to Neo4j: the only package that imports the neo4j driver."""
