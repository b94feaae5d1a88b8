// Fencing token check, run first in every write transaction of a lease holder: it takes the
// lease node's write lock (SET) and counts 1 only while $owner still holds the lease. A claim
// that takes the lease over waits for this lock, so a writer that lost its lease cannot commit.
// Params: $owner (STRING). Returns: held (INTEGER, 1 while $owner holds the lease, else 0).
OPTIONAL MATCH (l:WriterLease {key: 'main', owner: $owner})
SET l.lastWrite = timestamp()
RETURN count(l) AS held
