// Store a code transform (whitening learned from the archive) by its digest; idempotent.
// Params: $sha256 (STRING), $dim (INTEGER), $width (INTEGER), $shrink (FLOAT),
//         $mean, $basis, $scale (BYTES: little-endian float32 arrays, basis row-major width x dim).
// Returns: sha256 (STRING).
MERGE (t:CodeTransform {sha256: $sha256})
SET t.kind = 'whitening', t.dim = $dim, t.width = $width, t.shrink = $shrink,
    t.mean = $mean, t.basis = $basis, t.scale = $scale
RETURN t.sha256 AS sha256
