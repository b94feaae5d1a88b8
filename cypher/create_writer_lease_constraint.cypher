// The one writer lease per database is unique by key (claims on it serialise).
// Params: none. Returns: nothing.
CREATE CONSTRAINT writer_lease_key IF NOT EXISTS FOR (l:WriterLease) REQUIRE l.key IS UNIQUE
