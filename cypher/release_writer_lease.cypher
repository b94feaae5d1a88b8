// Give the lease back if $owner holds it. The first SET takes the lease node's write lock before
// the owner is read (see check_writer_fence.cypher): a release racing a takeover never erases
// the new holder's lease. Params: $owner (STRING). Returns: released (INTEGER).
OPTIONAL MATCH (l:WriterLease {key: 'main'})
SET l.fenceLock = true
REMOVE l.fenceLock
WITH l WHERE l.owner = $owner
REMOVE l.owner, l.command, l.host, l.pid, l.since, l.heartbeat
RETURN count(l) AS released
