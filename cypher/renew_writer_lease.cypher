// Heartbeat: refresh the lease if $owner still holds it. Params: $owner (STRING).
// Returns: held (INTEGER, 1 while $owner holds the lease, else 0).
OPTIONAL MATCH (l:WriterLease {key: 'main', owner: $owner})
SET l.heartbeat = timestamp()
RETURN count(l) AS held
