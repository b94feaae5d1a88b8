// The neighbourhood: the query and its results as a cytoscape graph of their SIMILAR edges (POST /subgraph),
// coloured by Louvain community, with the Cypher to open the same in Neo4j Browser.
// cytoscape is the vendored classic script (window.cytoscape); the drawing it returns is owned here.

import { post } from "./api.js";
import { openDetail } from "./detail.js";
import { $, el } from "./dom.js";
import * as state from "./state.js";

const COMMUNITY_COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
  "#ff9da7", "#9c755f", "#bab0ac", "#86bcb6", "#d4a6c8"];

let drawing = null; // the cytoscape instance on show, destroyed before the next is drawn

function elementsOf(answer, query, sub, threshold) {
  const communityOf = Object.fromEntries(sub.nodes.map((n) => [n.id, n.community]));
  const elements = [];
  const queryKey = query.id || "query";
  elements.push({ data: { id: queryKey, label: "query", community: communityOf[query.id] }, classes: "query" });
  for (const h of answer.hits) {
    elements.push({ data: { id: h.image_id, label: `#${h.rank}`, community: communityOf[h.image_id] ?? h.community } });
  }
  for (const e of sub.edges) {
    elements.push({ data: { id: `${e.source}|${e.target}`, source: e.source, target: e.target, cosine: e.cosine } });
  }
  if (!query.id && threshold != null) { // a new image is not in the graph: its edges are the hits at cosine >= T
    for (const h of answer.hits) {
      if (h.cosine >= threshold) elements.push({ data: { id: `query|${h.image_id}`, source: "query", target: h.image_id, cosine: h.cosine }, classes: "new" });
    }
  }
  return elements;
}

export async function drawNeighbourhood(answer, query) {
  const ids = answer.hits.map((h) => h.image_id);
  if (query.id) ids.unshift(query.id);
  const sub = await post("subgraph", { ids });
  if (state.answer() !== answer) return; // a newer answer is on show
  const health = state.health();
  const threshold = health && health.threshold;
  const elements = elementsOf(answer, query, sub, threshold);
  const rankOf = Object.fromEntries(answer.hits.map((h) => [h.image_id, h.rank]));
  const communities = [...new Set(elements.filter((e) => !e.data.source && e.data.community != null).map((e) => e.data.community))];
  const colour = (c) => c == null ? "#777" : COMMUNITY_COLOURS[communities.indexOf(c) % COMMUNITY_COLOURS.length];
  $("neighbourhood").hidden = false;
  if (drawing) drawing.destroy();
  drawing = window.cytoscape({
    container: $("graph"), elements, boxSelectionEnabled: false,
    style: [
      { selector: "node", style: { "background-color": (n) => colour(n.data("community")), label: "data(label)",
        color: "#e4e7ea", "font-size": 11, "text-valign": "center", "text-halign": "center", width: 30, height: 30,
        "text-outline-color": "#000", "text-outline-width": 2 } },
      { selector: "node.query", style: { shape: "star", width: 44, height: 44, "border-width": 3, "border-color": "#fff" } },
      { selector: "edge", style: { width: (e) => 1 + 4 * Math.max(0, (e.data("cosine") - (threshold || 0)) / Math.max(1e-6, 1 - (threshold || 0))),
        "line-color": "#6b7580", "curve-style": "haystack" } },
      { selector: "edge.new", style: { "line-style": "dashed", "line-color": "#9aa3ad" } },
    ],
    layout: { name: "cose", animate: false, randomize: false, nodeRepulsion: () => 9000, idealEdgeLength: () => 70, padding: 20 },
  });
  drawing.on("tap", "node", (evt) => {
    const rank = rankOf[evt.target.id()];
    if (rank) openDetail(rank - 1);
  });
  $("legend").replaceChildren(...communities.map((c) => {
    const li = el("li");
    const sw = el("span", "swatch");
    sw.style.background = colour(c);
    li.append(sw, `group ${c}`);
    return li;
  }));
  $("graph-counts").textContent = `${sub.edges.length} SIMILAR edges among ${sub.nodes.length} archived images`;
  state.setCypher(sub.cypher);
  const browser = state.config().browser;
  if (browser) $("browser-link").href = `${browser}?cmd=edit&arg=${encodeURIComponent(sub.cypher)}`;
}

// "Copy Cypher", once at start-up
export function wireNeighbourhood() {
  $("copy-cypher").addEventListener("click", async () => {
    const cypher = state.cypher();
    if (!cypher) return;
    try {
      await navigator.clipboard.writeText(cypher);
      $("copy-cypher").textContent = "Copied";
    } catch (e) {
      window.prompt("Cypher for Neo4j Browser:", cypher);
    }
  });
}
