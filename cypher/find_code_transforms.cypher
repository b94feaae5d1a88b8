// Stored code transforms: the one with digest $sha256, or every one when $sha256 is null (an
// interrupted first build may have left one before its GraphMeta).
// Params: $sha256 (STRING or null).
// Returns: sha256 (STRING), dim, width (INTEGER), shrink (FLOAT), mean, basis, scale (BYTES).
MATCH (t:CodeTransform)
WHERE $sha256 IS NULL OR t.sha256 = $sha256
RETURN t.sha256 AS sha256, t.dim AS dim, t.width AS width, t.shrink AS shrink,
       t.mean AS mean, t.basis AS basis, t.scale AS scale
ORDER BY sha256
