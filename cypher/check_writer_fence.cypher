// Fencing token check, run first in every write transaction of a lease holder: it takes the
// lease node's write lock (the SET) BEFORE it reads the owner, and counts 1 only while $owner
// still holds the lease. A claim that takes the lease over holds this lock until it commits, so
// the owner compared here is the committed one: a writer that lost its lease cannot commit.
// (Reading the owner first, then locking, could compare an owner a takeover was replacing.)
// Params: $owner (STRING). Returns: held (INTEGER, 1 while $owner holds the lease, else 0).
OPTIONAL MATCH (l:WriterLease {key: 'main'})
SET l.lastWrite = timestamp()
WITH l WHERE l.owner = $owner
RETURN count(l) AS held
