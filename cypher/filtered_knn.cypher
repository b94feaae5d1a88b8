// Exact cosine kNN among the images that pass a filter: what `cxrneo query --method knn` with filter
// flags answers. The filter comes first (WHERE on the stored properties), then every passing image
// is ranked by its cosine: a vector index cannot pre-filter, and a WHERE after
// db.index.vector.queryNodes would return fewer than k. 'No Finding' matches images without labels;
// an unknown age never passes an age bound. Ties go to the smaller id, as in the service.
// Params: $code (LIST<FLOAT>), $k (INTEGER), $exclude (LIST<STRING>: the query itself),
//         $conditions (LIST<MAP>: one per condition, all must hold, cxrneo.filters.conditions):
//         {property: the Image property, op: 'all' | 'any' | 'none' (of values) | 'min' | 'max'
//         (a bound, values[0]), normal: '' | 'upper' (trimmed, upper case) | 'initial' (first
//         letter, upper case), values: LIST}, e.g. [{property: 'labels', op: 'all', normal: '',
//         values: ['Effusion']}, {property: 'sex', op: 'any', normal: 'initial', values: ['F']}].
// Returns: id (STRING), cosine (FLOAT), labels (LIST<STRING>), sex, view (STRING), age (INTEGER).
MATCH (i:Image)
WHERE NOT i.id IN $exclude
WITH i, [c IN $conditions | {op: c.op, values: c.values, has:
       CASE
         WHEN c.property = 'labels' THEN CASE size(coalesce(i.labels, [])) WHEN 0 THEN ['No Finding'] ELSE i.labels END
         WHEN c.normal = 'upper' THEN [toUpper(trim(coalesce(toString(i[c.property]), '')))]
         WHEN c.normal = 'initial' THEN [toUpper(left(coalesce(toString(i[c.property]), ''), 1))]
         ELSE [coalesce(i[c.property], '')]
       END}] AS checks
WHERE all(x IN checks WHERE
       CASE x.op
         WHEN 'all' THEN all(v IN x.values WHERE v IN x.has)
         WHEN 'any' THEN any(v IN x.values WHERE v IN x.has)
         WHEN 'none' THEN none(v IN x.values WHERE v IN x.has)
         WHEN 'min' THEN any(h IN x.has WHERE h <> '' AND h >= x.values[0])
         WHEN 'max' THEN any(h IN x.has WHERE h <> '' AND h >= 0 AND h <= x.values[0])
       END)
WITH i, vector.similarity.cosine(i.code, $code) AS score
ORDER BY score DESC, i.id
LIMIT $k
RETURN i.id AS id, 2 * score - 1 AS cosine, i.labels AS labels, i.sex AS sex, i.view AS view, i.age AS age
