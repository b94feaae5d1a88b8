// Project Image nodes and SIMILAR edges, read undirected, into the GDS catalog. Nodes enter in
// Image.id order first (then the edges), so GDS's internal ids, and with them Louvain's result
// and community ids, do not depend on the order the graph was loaded in.
// Params: $graph (STRING, unique per run), $seeded (BOOLEAN: give each image its stored
//         community as node property 'community'; images without one get none).
// Returns: nodeCount, relationshipCount.
CALL () {
  MATCH (s:Image) WITH s ORDER BY s.id RETURN s, null AS t, true AS first
  UNION ALL
  MATCH (s:Image)-[:SIMILAR]->(t:Image) RETURN s, t, false AS first
}
WITH gds.graph.project($graph, s, t,
       CASE WHEN $seeded AND first AND s.community IS NOT NULL
            THEN {sourceNodeProperties: {community: s.community}, targetNodeProperties: null}
            ELSE {} END,
       {undirectedRelationshipTypes: ['*']}) AS g
RETURN g.nodeCount AS nodeCount, g.relationshipCount AS relationshipCount
