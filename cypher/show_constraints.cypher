// The database's constraints. Params: none.
// Returns: name (STRING), type (STRING), labelsOrTypes (LIST<STRING>), properties (LIST<STRING>).
SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties
