// Heartbeat: refresh the lease if $owner still holds it. The first SET takes the lease node's
// write lock before the owner is read (see check_writer_fence.cypher); the REMOVE undoes it, so
// the node is left as it was when $owner does not hold the lease.
// Params: $owner (STRING). Returns: held (INTEGER, 1 while $owner holds the lease, else 0).
OPTIONAL MATCH (l:WriterLease {key: 'main'})
SET l.fenceLock = true
REMOVE l.fenceLock
WITH l WHERE l.owner = $owner
SET l.heartbeat = timestamp()
RETURN count(l) AS held
