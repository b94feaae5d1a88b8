// Project an evaluation's graph into the GDS catalog from rows the client holds (nothing stored
// in the database is read or written). Nodes are the integers in $nodes (each a row of the
// evaluation's codes), entered first and in the given order (the rows in image-id order, as
// project_similarity_graph enters Image nodes), so every image is a node, isolated ones too;
// then one relationship per ($src[i], $dst[i]) pair, read undirected.
// Params: $graph (STRING, unique per run), $nodes (LIST<INTEGER>), $src, $dst (LIST<INTEGER>,
//         equal length).
// Returns: nodeCount, relationshipCount.
CALL () {
  UNWIND $nodes AS s RETURN s, null AS t
  UNION ALL
  UNWIND range(0, size($src) - 1) AS i RETURN $src[i] AS s, $dst[i] AS t
}
WITH gds.graph.project($graph, s, t, {}, {undirectedRelationshipTypes: ['*']}) AS g
RETURN g.nodeCount AS nodeCount, g.relationshipCount AS relationshipCount
