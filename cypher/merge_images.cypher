// Create or update Image nodes by id.
// Params: $rows = [{id, path, labels, patientId, view, sex, age, split, studyUid, seriesUid, code,
// codeBytes}] (studyUid, seriesUid: '' for images not from a PACS)
// (codeBytes: the same code as little-endian float32 bytes, for fast bulk reads).
// Returns: written (INTEGER).
UNWIND $rows AS row
MERGE (i:Image {id: row.id})
SET i.path = row.path, i.labels = row.labels, i.patientId = row.patientId, i.view = row.view,
    i.sex = row.sex, i.age = row.age, i.split = row.split, i.studyUid = row.studyUid,
    i.seriesUid = row.seriesUid, i.code = row.code,
    i.codeBytes = row.codeBytes
RETURN count(*) AS written
