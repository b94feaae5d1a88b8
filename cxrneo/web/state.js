// The viewer's one piece of shared state, owned here: what the service offers (/config, /health), the answer
// on show with its query, and which result the closer look shows. Other modules read and change it only
// through these functions.

const state = { config: null, health: null, answer: null, query: null, concepts: null, current: -1, cypher: null };

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
  Object.assign(state, { answer, query, concepts, current: -1, cypher: null });
}

// the result the closer look shows (an index into answer().hits, wrapped around)
export const current = () => state.current;
export function setCurrent(i) {
  const n = state.answer ? state.answer.hits.length : 0;
  state.current = n ? (i + n) % n : -1;
  return state.current;
}
export const currentHit = () => (state.answer && state.current >= 0 ? state.answer.hits[state.current] : null);

// the Cypher of the neighbourhood on show (for Neo4j Browser)
export const cypher = () => state.cypher;
export const setCypher = (cypher) => { state.cypher = cypher; };
