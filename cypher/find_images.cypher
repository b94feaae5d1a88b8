// Records of the given images (those that exist), for display. Params: $ids (LIST<STRING>).
// Returns: id (STRING), labels (LIST<STRING>), patientId (STRING), view (STRING), sex (STRING),
// age (INTEGER), studyUid, seriesUid (STRING or null: images from a PACS), community (INTEGER).
UNWIND $ids AS id
MATCH (i:Image {id: id})
RETURN i.id AS id, i.labels AS labels, i.patientId AS patientId, i.view AS view, i.sex AS sex, i.age AS age,
       i.studyUid AS studyUid, i.seriesUid AS seriesUid, i.community AS community
