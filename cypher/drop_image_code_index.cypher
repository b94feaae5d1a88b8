// Drop the optional vector index on Image.code (idempotent): `cxrneo db vector-index drop`, and a
// first load that rebuilds it in one go after its writes.
// params: none
// returns: nothing
DROP INDEX image_code IF EXISTS
