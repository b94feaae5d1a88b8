// Every image of one patient. Params: $patientId (STRING). Returns: id (STRING).
MATCH (i:Image)
WHERE i.patientId = $patientId
RETURN i.id AS id
