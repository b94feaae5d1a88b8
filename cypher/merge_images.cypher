// Create or update Image nodes by id.
// Params: $rows = [{id, path, studyUid, seriesUid, code, codeBytes, columns}] (studyUid, seriesUid:
// '' for images not from a PACS; codeBytes: the same code as little-endian float32 bytes, for fast
// bulk reads; columns: a map of the filter columns' properties, cxrneo.filters.COLUMNS: labels,
// patientId, view, sex, age, split, ...).
// Returns: written (INTEGER).
UNWIND $rows AS row
MERGE (i:Image {id: row.id})
SET i += row.columns
SET i.path = row.path, i.studyUid = row.studyUid, i.seriesUid = row.seriesUid, i.code = row.code,
    i.codeBytes = row.codeBytes
RETURN count(*) AS written
