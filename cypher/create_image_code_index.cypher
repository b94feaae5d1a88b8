// The optional vector index image_code on Image.code, 1024 dimensions, cosine (idempotent); built
// only on request (cxrneo.db.schema.build_vector_index). Params: none. Returns: nothing.
CREATE VECTOR INDEX image_code IF NOT EXISTS FOR (i:Image) ON (i.code)
OPTIONS {indexConfig: {`vector.dimensions`: 1024, `vector.similarity_function`: 'cosine'}}
