// The full record of one image (no code). Params: $id (STRING).
// Returns: id, path, labels, patientId, view, sex, age, studyUid, seriesUid, split, community.
MATCH (i:Image {id: $id})
RETURN i.id AS id, i.path AS path, i.labels AS labels, i.patientId AS patientId, i.view AS view,
       i.sex AS sex, i.age AS age, i.studyUid AS studyUid, i.seriesUid AS seriesUid, i.split AS split,
       i.community AS community
