// Delete every SIMILAR edge in batches (auto-commit transaction). Params: none. Returns: nothing.
MATCH ()-[r:SIMILAR]->()
CALL (r) { DELETE r } IN TRANSACTIONS OF 50000 ROWS
