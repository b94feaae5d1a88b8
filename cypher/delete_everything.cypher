// Remove every node and relationship (tests and `cxrneo db reset`), in batches; the writer
// lease node stays (the reset holds it).
// params: none
// returns: nothing
MATCH (n) WHERE NOT n:WriterLease CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS
