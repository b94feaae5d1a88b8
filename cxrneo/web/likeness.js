// How alike a result is to the query, in words a reader uses: "closer than 99.8% of the archive" (the
// service's share of the archive less alike than this result), the cosine where the service gives none.

export const FALLBACK = "added by similarity alone";
export const FALLBACK_WHY = "The graph search ran out of closely linked films (or a filter left them out), "
  + "so this one was added because it is alike by itself.";

export function alikeWords(hit) {
  if (hit.closer_than == null) return `similarity ${hit.cosine.toFixed(3)}`;
  return `closer than ${(Math.floor(hit.closer_than * 1000) / 10).toFixed(1)}% of the archive`;
}
