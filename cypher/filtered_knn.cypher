// Exact cosine kNN among the images that pass a filter: what `cxrneo query --method knn` with filter
// flags answers. The filter comes first (WHERE on the stored properties), then every passing image
// is ranked by its cosine: a vector index cannot pre-filter, and a WHERE after
// db.index.vector.queryNodes would return fewer than k. 'No Finding' matches images without labels;
// an unknown age never passes an age bound. Ties go to the smaller id, as in the service.
// Params: $code (LIST<FLOAT>), $k (INTEGER), $exclude (LIST<STRING>: the query itself),
//         $findings, $anyFindings, $without, $views, $splits, $patients, $notPatients (LIST<STRING>,
//         [] = no condition), $sex (STRING or null), $ageMin, $ageMax (INTEGER or null),
//         $communities (LIST<INTEGER>).
// Returns: id (STRING), cosine (FLOAT), labels (LIST<STRING>), sex, view (STRING), age (INTEGER).
MATCH (i:Image)
WITH i, CASE size(i.labels) WHEN 0 THEN ['No Finding'] ELSE i.labels END AS shown
WHERE NOT i.id IN $exclude
  AND all(f IN $findings WHERE f IN shown)
  AND (size($anyFindings) = 0 OR any(f IN $anyFindings WHERE f IN shown))
  AND none(f IN $without WHERE f IN shown)
  AND ($sex IS NULL OR toUpper(left(i.sex, 1)) = $sex)
  AND ($ageMin IS NULL OR i.age >= $ageMin)
  AND ($ageMax IS NULL OR (i.age >= 0 AND i.age <= $ageMax))
  AND (size($views) = 0 OR toUpper(trim(i.view)) IN $views)
  AND (size($splits) = 0 OR i.split IN $splits)
  AND (size($patients) = 0 OR i.patientId IN $patients)
  AND NOT coalesce(i.patientId, '') IN $notPatients
  AND (size($communities) = 0 OR i.community IN $communities)
WITH i, vector.similarity.cosine(i.code, $code) AS score
ORDER BY score DESC, i.id
LIMIT $k
RETURN i.id AS id, 2 * score - 1 AS cosine, i.labels AS labels, i.sex AS sex, i.view AS view, i.age AS age
