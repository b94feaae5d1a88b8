// Remove every node and relationship (tests and `cxrneo db reset`), in batches.
// params: none
// returns: nothing
MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS
