// Colour labels for Neo4j Browser (cypher/style.grass): each image gets exactly one label
// :Palette0 .. :Palette<$colours - 1>, chosen by its community id. Purely cosmetic.
// params: $colours (INTEGER)
// returns: nothing
MATCH (i:Image) WHERE i.community IS NOT NULL
CALL (i) {
  WITH i, [l IN labels(i) WHERE l STARTS WITH 'Palette'] AS old
  REMOVE i:$(old)
  SET i:$('Palette' + toString(i.community % $colours))
} IN TRANSACTIONS OF 10000 ROWS
