// The database's indexes and their state. Params: none.
// Returns: name, type, state (STRING), labelsOrTypes, properties (LIST<STRING>).
SHOW INDEXES YIELD name, type, state, labelsOrTypes, properties
