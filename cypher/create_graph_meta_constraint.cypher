// Uniqueness constraint on GraphMeta.key (idempotent). Params: none. Returns: nothing.
CREATE CONSTRAINT graph_meta_key IF NOT EXISTS FOR (m:GraphMeta) REQUIRE m.key IS UNIQUE
