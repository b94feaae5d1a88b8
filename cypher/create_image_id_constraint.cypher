// Uniqueness constraint on Image.id (idempotent). Params: none. Returns: nothing.
CREATE CONSTRAINT image_id IF NOT EXISTS FOR (i:Image) REQUIRE i.id IS UNIQUE
