// Uniqueness constraint on Community.id (idempotent). Params: none. Returns: nothing.
CREATE CONSTRAINT community_id IF NOT EXISTS FOR (c:Community) REQUIRE c.id IS UNIQUE
