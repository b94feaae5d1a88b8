// Give the lease back if $owner holds it. Params: $owner (STRING). Returns: released (INTEGER).
OPTIONAL MATCH (l:WriterLease {key: 'main', owner: $owner})
REMOVE l.owner, l.command, l.host, l.pid, l.since, l.heartbeat
RETURN count(l) AS released
