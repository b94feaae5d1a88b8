// Records of the given images (those that exist). Params: $ids (LIST<STRING>).
// Returns: id (STRING), labels (LIST<STRING>), patientId (STRING).
UNWIND $ids AS id
MATCH (i:Image {id: id})
RETURN i.id AS id, i.labels AS labels, i.patientId AS patientId
