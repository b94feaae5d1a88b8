// The viewer's one piece of shared state, owned here: what the service offers (/config, /health), the answer
// on show with its query, the order its cards are shown in, the examples and the region the next search is steered by,
// whether the answer is out of date, and which result the closer look shows. Other modules read and change
// it only through these functions.

const state = {
  config: null, health: null, answer: null, query: null, concepts: null, current: -1, cypher: null,
  order: [], bySimilarity: false, examples: [], stale: "", region: null, regionFilm: "",
};

export const config = () => state.config;
export const setConfig = (config) => { state.config = config; };
export const offers = (feature) => ((state.config && state.config.features) || []).includes(feature);

export const health = () => state.health;
export const setHealth = (health) => { state.health = health; };

// the answer on show, its query and the finding steps it was asked with
export const answer = () => state.answer;
export const query = () => state.query;
export const concepts = () => state.concepts;
export function show(answer, query, concepts) {
  Object.assign(state, { answer, query, concepts, current: -1, cypher: null, stale: "", bySimilarity: false,
    order: answer.hits.map((_, i) => i) });
}

// the order the cards are shown in: as the method returned them, or most alike first (indices into hits)
export const order = () => state.order;
export const bySimilarity = () => state.bySimilarity;
export function sortBySimilarity(on) {
  const hits = state.answer ? state.answer.hits : [];
  const order = hits.map((_, i) => i);
  if (on) order.sort((a, b) => hits[b].cosine - hits[a].cosine || hits[a].rank - hits[b].rank);
  Object.assign(state, { order, bySimilarity: on, current: -1 });
}

// the region marked on a query film ([x0, y0, x1, y1] in fractions; null: none) and that film ("id:…" or
// "file:…"): the next search of that film sends it
export const region = () => (state.region ? [...state.region] : null);
export const regionFilm = () => state.regionFilm;
export function setRegion(box, film) { Object.assign(state, { region: box ? [...box] : null, regionFilm: box ? film : "" }); }

// the archived images the next search is steered by ("query + N examples"), shown in the query panel
export const examples = () => [...state.examples];
export function setExamples(ids) { state.examples = [...new Set(ids)]; }

// why the answer on show no longer matches the page's settings ("": it does)
export const stale = () => state.stale;
export function setStale(why) { state.stale = state.answer ? why : ""; }

// the result the closer look shows: a place in the shown order, wrapped around
export const current = () => state.current;
export function setCurrent(i) {
  const n = state.order.length;
  state.current = n ? (i + n) % n : -1;
  return state.current;
}
export const currentHit = () => (state.answer && state.current >= 0 ? state.answer.hits[state.order[state.current]] : null);

// the Cypher of the neighbourhood on show (for Neo4j Browser)
export const cypher = () => state.cypher;
export const setCypher = (cypher) => { state.cypher = cypher; };
