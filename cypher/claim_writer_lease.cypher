// Claim the database's single writer lease, or say who holds it. The SET before the read takes
// the node's write lock, so two claims serialise and only one can win.
// A lease is free when nobody holds it, when $owner holds it, when its holder is $stale (a
// process the caller knows is dead) or when its heartbeat is older than $ttlMs (server clock).
// Params: $owner (STRING), $command (STRING), $host (STRING), $pid (INTEGER), $stale (STRING),
//         $ttlMs (INTEGER).
// Returns: claimed (BOOLEAN), owner, command, host (STRING), pid, since, heartbeat, now (INTEGER ms).
MERGE (l:WriterLease {key: 'main'})
SET l.lastClaim = $owner
WITH l, timestamp() AS now
WITH l, now, (l.owner IS NULL OR l.owner = $owner OR l.owner = $stale
              OR l.heartbeat < now - $ttlMs) AS free
FOREACH (_ IN CASE WHEN free THEN [1] ELSE [] END |
  SET l.owner = $owner, l.command = $command, l.host = $host, l.pid = $pid, l.since = now,
      l.heartbeat = now)
RETURN free AS claimed, l.owner AS owner, l.command AS command, l.host AS host, l.pid AS pid,
       l.since AS since, l.heartbeat AS heartbeat, now
