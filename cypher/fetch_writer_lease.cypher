// The writer lease, if one is held. Params: none.
// Returns: owner, command, host (STRING), pid, since, heartbeat, now (INTEGER ms).
MATCH (l:WriterLease {key: 'main'}) WHERE l.owner IS NOT NULL
RETURN l.owner AS owner, l.command AS command, l.host AS host, l.pid AS pid, l.since AS since,
       l.heartbeat AS heartbeat, timestamp() AS now
