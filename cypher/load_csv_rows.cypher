// Count the rows LOAD CSV reads from $url: tests use it to prove that the local server confines
// LOAD CSV to its import folder and refuses URLs.
// Params: $url (STRING). Returns: rows (INTEGER).
LOAD CSV FROM $url AS row
RETURN count(row) AS rows
