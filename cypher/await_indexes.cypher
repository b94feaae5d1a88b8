// Wait until every index is online. Params: $seconds (INTEGER). Returns: nothing.
CALL db.awaitIndexes($seconds)
