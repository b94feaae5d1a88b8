// Every Image with all its stored properties (tests compare bulk import with plain ingest).
// Params: none. Returns: id, path, labels, patientId, view, sex, age, split, code.
MATCH (i:Image)
RETURN i.id AS id, i.path AS path, i.labels AS labels, i.patientId AS patientId, i.view AS view,
       i.sex AS sex, i.age AS age, i.split AS split, i.code AS code
ORDER BY id
