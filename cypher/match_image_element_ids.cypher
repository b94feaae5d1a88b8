// elementId of every image (valid for this ingest only). Params: none.
// Returns: id (STRING), element (STRING).
MATCH (i:Image) RETURN i.id AS id, elementId(i) AS element
