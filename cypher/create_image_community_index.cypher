// Range index on Image.community (idempotent). Params: none. Returns: nothing.
CREATE RANGE INDEX image_community IF NOT EXISTS FOR (i:Image) ON (i.community)
