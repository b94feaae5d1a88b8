// cxrneo viewer: query by an image file or an archived id, show the hits with their findings, look closer,
// draw the neighbourhood. Talks only to this service's JSON/PNG routes; nothing is loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "cxrneo-token";
const THUMB = 256, LARGE = 1024, PREVIEW = 512;
const NO_FINDING = "No Finding";
// one colour per finding (NIH ChestX-ray14, then CheXpert); others get one from their name
const FINDING_COLOURS = {
  Atelectasis: "#b4461f", Cardiomegaly: "#a3338c", Consolidation: "#2f6db5", Edema: "#1b8a8a",
  Effusion: "#3f7d20", Emphysema: "#7a5cc7", Fibrosis: "#8a6d1b", Hernia: "#5a6b7a", Infiltration: "#c23a5a",
  Mass: "#c76d12", Nodule: "#8f7400", Pleural_Thickening: "#4d7f9e", Pneumonia: "#b0306a", Pneumothorax: "#1f7f5c",
  "Enlarged Cardiomediastinum": "#8c3fa8", "Lung Opacity": "#3b6fa0", "Lung Lesion": "#a85b2f",
  "Pleural Effusion": "#3f7d20", "Pleural Other": "#4d7f9e", Fracture: "#8b4b4b", "Support Devices": "#55606b",
};
const COMMUNITY_COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
  "#ff9da7", "#9c755f", "#bab0ac", "#86bcb6", "#d4a6c8"];

const state = { config: null, health: null, answer: null, query: null, current: -1, urls: [] };

// --- talking to the service ---------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", "Bearer " + token());
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (e) {
    throw new ApiError(0, "the cxrneo service cannot be reached (is `cxrneo serve` running?)");
  }
  if (!response.ok) {
    let message = response.statusText || "request failed";
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON: keep the status text */ }
    throw new ApiError(response.status, `${message} (HTTP ${response.status})`);
  }
  return response;
}

const json = async (path, options) => (await api(path, options)).json();
const post = (path, body) => json(path, { method: "POST", headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body) });

async function blobUrl(path, options) {
  const url = URL.createObjectURL(await (await api(path, options)).blob());
  state.urls.push(url);
  return url;
}

function releaseImages() { state.urls.forEach((u) => URL.revokeObjectURL(u)); state.urls = []; }

// --- messages -----------------------------------------------------------------------------------

function showError(message) {
  const line = String(message).split("\n")[0];
  $("error").textContent = line;
  $("error").hidden = !line;
}

function fail(e) {
  if (e instanceof ApiError && e.status === 401) { askToken(e.message); return; }
  showError(e instanceof Error ? e.message : String(e));
}

// --- token --------------------------------------------------------------------------------------

function askToken(message) {
  $("token-error").textContent = message || "";
  $("token-error").hidden = !message;
  $("token").value = "";
  if (!$("token-dialog").open) $("token-dialog").showModal();
  $("token").focus();
}

$("token-form").addEventListener("submit", () => {
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  start();
});
$("token-button").addEventListener("click", () => askToken(""));

// --- findings -----------------------------------------------------------------------------------

function colourOf(finding) {
  if (FINDING_COLOURS[finding]) return FINDING_COLOURS[finding];
  let h = 0;
  for (const c of finding) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h} 45% 38%)`;
}

function chips(list, labels, shared) {
  list.replaceChildren();
  const names = labels && labels.length ? labels : [NO_FINDING];
  for (const name of names) {
    const li = document.createElement("li");
    li.className = "chip";
    li.textContent = name.replaceAll("_", " ");
    if (name === NO_FINDING) li.classList.add("none");
    else li.style.background = colourOf(name);
    if (shared && shared.has(name)) { li.classList.add("shared"); li.title = "also a finding of the query"; }
    list.append(li);
  }
}

function describe(r) {
  const parts = [];
  if (r.patient_id || r.patientId) parts.push(`patient ${r.patient_id || r.patientId}`);
  const who = [r.age != null ? `${r.age} y` : "", r.sex || ""].filter(Boolean).join(" ");
  if (who) parts.push(who);
  if (r.view) parts.push(r.view);
  if (r.community != null) parts.push(`community ${r.community}`);
  return parts.join(" · ");
}

const findingsText = (labels) => (labels && labels.length ? labels.join(", ") : NO_FINDING).replaceAll("_", " ");

// --- start: what the service offers -------------------------------------------------------------

async function start() {
  showError("");
  try {
    state.config = await json("config");
  } catch (e) {
    $("status").textContent = "not connected";
    if (e instanceof ApiError && e.status === 401) {
      askToken(token() ? "The token was not accepted (HTTP 401): check CXRNEO_API_TOKEN." : "");
    } else {
      fail(e);
    }
    return;
  }
  $("token-button").hidden = !token();
  const select = $("method");
  select.replaceChildren(...state.config.methods.map((m) => new Option(m, m)));
  $("k").max = Math.min(100, state.config.max_k);
  const files = state.config.image_queries;
  $("file").disabled = !files;
  $("file-note").textContent = files ? "PNG, JPEG or DICOM" : "image files need `cxrneo serve --checkpoint`";
  $("browser-link").hidden = !state.config.browser;
  setUpNarrowing(state.config);
  await refreshHealth();
  const wanted = new URLSearchParams(location.search).get("id");
  if (wanted) { $("image-id").value = wanted; await search(); }
}

async function refreshHealth() {
  try {
    state.health = await json("health");
    const h = state.health;
    $("status").textContent = h.status === "ok"
      ? `${h.images} archived images · ${h.edges} similarity edges · T = ${Number(h.threshold).toFixed(4)} · generation ${h.generation}`
      : `graph ${h.status}${h.error ? ": " + h.error : ""}`;
  } catch (e) {
    $("status").textContent = "health unknown";
  }
}

// --- the query ----------------------------------------------------------------------------------

function chosenFile() { return $("file").files && $("file").files[0]; }

async function search() {
  showError("");
  const k = Number($("k").value);
  if (!Number.isInteger(k) || k < 1 || k > Number($("k").max)) {
    showError(`K must be a whole number from 1 to ${$("k").max}`); return;
  }
  const method = $("method").value;
  const id = $("image-id").value.trim();
  const file = chosenFile();
  if (!id && !file) { showError("choose an image file or type an archived image id"); return; }
  $("search").disabled = true;
  $("summary").textContent = "searching…";
  try {
    let answer, query;
    if (file) {
      const form = new FormData();
      form.append("file", file);
      // the same fields as a JSON query; objects (filter, concepts) as JSON text
      for (const [name, value] of Object.entries(narrowed({ k, method }))) {
        form.append(name, typeof value === "object" ? JSON.stringify(value) : String(value));
      }
      answer = await json("query/image", { method: "POST", body: form });
      query = { id: null, name: file.name, labels: null, file };
    } else {
      answer = await post("query", narrowed({ id, k, method, exclude_patient: $("exclude-patient").checked }));
      const record = await json(`images/${encodeURIComponent(id)}`);
      query = { ...record, name: id };
    }
    await present(answer, query);
  } catch (e) {
    $("summary").textContent = "";
    fail(e);
  } finally {
    $("search").disabled = false;
  }
}

async function present(answer, query) {
  releaseImages();
  state.answer = answer;
  state.concepts = currentConcepts();
  state.query = query;
  await showQuery(query);
  showResults(answer, query);
  drawNeighbourhood(answer, query).catch(fail);
}

async function queryImageUrl(query, size) {
  if (query.id) return blobUrl(`images/${encodeURIComponent(query.id)}/pixels?size=${size}`);
  const form = new FormData();
  form.append("file", query.file);
  return blobUrl(`images/render?size=${size}`, { method: "POST", body: form });
}

async function showQuery(query) {
  $("query-view").hidden = false;
  $("query-empty").hidden = true;
  $("query-name").textContent = query.name;
  if (query.id) {
    chips($("query-chips"), query.labels);
    $("query-meta").textContent = describe(query);
  } else {
    $("query-chips").replaceChildren();
    $("query-meta").textContent = "a new image (not in the archive): findings unknown";
  }
  const img = $("query-img");
  img.alt = `Query chest X-ray ${query.name}` + (query.id ? `, findings: ${findingsText(query.labels)}` : "");
  img.removeAttribute("src");
  query.url = await queryImageUrl(query, PREVIEW);
  img.src = query.url;
}

function sharedWith(query) { return new Set(query.id ? (query.labels || []) : []); }

function showResults(answer, query) {
  const grid = $("grid");
  grid.replaceChildren();
  const shared = sharedWith(query);
  const agree = query.id && query.labels && query.labels.length
    ? answer.hits.filter((h) => h.labels.some((l) => shared.has(l))).length : null;
  $("summary").textContent = `${answer.hits.length} archived X-rays by ${answer.method} retrieval for ${query.name}`
    + (agree != null ? ` · ${agree} share a finding with the query` : "")
    + (answer.method === "knn" ? " · ranked by cosine" : ` · in the order ${answer.method} retrieval grew them (kNN ranks by cosine)`)
    + (answer.passing != null ? ` · ${answer.passing} archived X-rays pass the filter` : "")
    + (state.concepts ? ` · steered: ${Object.entries(state.concepts).map(([f, v]) => `${f} ${v > 0 ? "+" : ""}${v}`).join(", ")}` : "")
    + ` · ${answer.query_ms.toFixed(0)} ms`;
  $("examples-bar").hidden = !(state.config.features || []).includes("examples");
  updateExamples();
  answer.hits.forEach((hit, i) => {
    const li = document.createElement("li");
    const card = document.createElement("button");
    card.type = "button";
    card.className = "card";
    card.dataset.id = hit.image_id;
    card.dataset.rank = String(hit.rank);
    const thumb = document.createElement("div");
    thumb.className = "thumb";
    const img = document.createElement("img");
    img.alt = `Retrieved chest X-ray ${hit.image_id}, rank ${hit.rank}, findings: ${findingsText(hit.labels)}`;
    const rank = document.createElement("span");
    rank.className = "rank";
    rank.textContent = `#${hit.rank}`;
    const cos = document.createElement("span");
    cos.className = "cos";
    cos.textContent = `cos ${hit.cosine.toFixed(3)}`;
    thumb.append(img, rank, cos);
    const body = document.createElement("div");
    body.className = "body";
    const name = document.createElement("p");
    name.className = "id";
    name.textContent = hit.image_id + (hit.fallback ? " (cosine fallback)" : "");
    const list = document.createElement("ul");
    list.className = "chips";
    chips(list, hit.labels, shared);
    const meta = document.createElement("p");
    meta.className = "meta";
    meta.textContent = describe(hit);
    body.append(name, list, meta);
    card.append(thumb, body);
    card.addEventListener("click", () => openDetail(i));
    const pick = document.createElement("label");
    pick.className = "pick";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.dataset.id = hit.image_id;
    box.setAttribute("aria-label", `use ${hit.image_id} as an example`);
    box.addEventListener("change", updateExamples);
    pick.append(box, document.createTextNode(" like this"));
    li.append(card, pick);
    const study = studyLink(hit);
    if (study) li.append(study);
    grid.append(li);
    blobUrl(`images/${encodeURIComponent(hit.image_id)}/pixels?size=${THUMB}`)
      .then((url) => { img.src = url; })
      .catch((e) => { img.alt = `${hit.image_id}: ${e.message}`; thumb.classList.add("missing"); showError(e.message); });
  });
}

// --- the link back to the PACS: a study viewer's address for images that came from one ---------

function studyLink(hit) {
  const template = state.config.viewer_url;
  if (!template || !hit.study_uid) return null;
  const a = document.createElement("a");
  a.className = "study";
  a.href = template.replaceAll("{StudyInstanceUID}", encodeURIComponent(hit.study_uid))
    .replaceAll("{SeriesInstanceUID}", encodeURIComponent(hit.series_uid || ""))
    .replaceAll("{SOPInstanceUID}", encodeURIComponent(hit.image_id));
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  a.textContent = "open the study";
  a.setAttribute("aria-label", `open the study of ${hit.image_id} in the image viewer`);
  return a;
}

// --- narrowing: filters and examples ------------------------------------------------------------

const FINDING_STATES = ["", "with", "without"];

function setUpNarrowing(config) {
  const features = config.features || [];
  $("narrow").hidden = !features.includes("filters");
  if (window.matchMedia("(max-width: 700px)").matches) $("narrow").open = false; // a phone: results first
  $("slider-row").hidden = !features.includes("sliders");
  $("concept").replaceChildren(new Option("none", ""),
    ...(config.findings || []).filter((f) => f !== NO_FINDING).map((f) => new Option(f.replaceAll("_", " "), f)));
  const box = $("finding-toggles");
  box.replaceChildren(...(config.findings || []).map((name) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "toggle";
    b.dataset.finding = name;
    b.dataset.state = "";
    b.textContent = name.replaceAll("_", " ");
    b.setAttribute("aria-label", `${name}: either`);
    b.addEventListener("click", () => {
      const next = FINDING_STATES[(FINDING_STATES.indexOf(b.dataset.state) + 1) % FINDING_STATES.length];
      b.dataset.state = next;
      b.textContent = (next === "with" ? "✓ " : next === "without" ? "✗ " : "") + name.replaceAll("_", " ");
      b.setAttribute("aria-label", `${name}: ${next === "with" ? "must show" : next === "without" ? "must not show" : "either"}`);
    });
    return b;
  }));
}

function narrowed(body) {
  const filter = currentFilter(), concepts = currentConcepts();
  const active = (filter ? Object.keys(filter).length : 0) + (concepts ? 1 : 0);
  $("narrow-state").textContent = active ? `(${active} condition${active > 1 ? "s" : ""} set)` : "";
  return { ...body, ...(filter ? { filter } : {}), ...(concepts ? { concepts } : {}) };
}

function currentConcepts() {
  const name = $("concept").value, step = Number($("concept-step").value);
  return !$("slider-row").hidden && name && step !== 0 ? { [name]: step } : null;
}

function currentFilter() {
  if ($("narrow").hidden) return null;
  const f = {};
  const toggles = [...document.querySelectorAll("#finding-toggles .toggle")];
  const findings = toggles.filter((b) => b.dataset.state === "with").map((b) => b.dataset.finding);
  const without = toggles.filter((b) => b.dataset.state === "without").map((b) => b.dataset.finding);
  if (findings.length) f.findings = findings;
  if (without.length) f.without = without;
  if ($("f-sex").value) f.sex = $("f-sex").value;
  for (const [field, id] of [["age_min", "f-age-min"], ["age_max", "f-age-max"]]) {
    const v = $(id).value.trim();
    if (v !== "") f[field] = Number(v);
  }
  if ($("f-view").value) f.views = [$("f-view").value];
  return Object.keys(f).length ? f : null;
}

function clearFilter() {
  for (const b of document.querySelectorAll("#finding-toggles .toggle")) {
    b.dataset.state = "";
    b.textContent = b.dataset.finding.replaceAll("_", " ");
    b.setAttribute("aria-label", `${b.dataset.finding}: either`);
  }
  for (const id of ["f-sex", "f-age-min", "f-age-max", "f-view", "concept"]) $(id).value = "";
  $("concept-step").value = "0";
  $("concept-value").textContent = "0";
}

function selectedExamples() {
  return [...document.querySelectorAll("#grid .pick input:checked")].map((b) => b.dataset.id);
}

function updateExamples() {
  const ids = selectedExamples();
  $("more-like").disabled = ids.length === 0;
  $("more-like").textContent = ids.length ? `More like the ${ids.length} selected` : "More like the selected";
}

async function moreLikeThese() {
  showError("");
  const ids = selectedExamples();
  if (state.query && state.query.id && !ids.includes(state.query.id)) ids.unshift(state.query.id);
  const body = narrowed({ ids, k: Number($("k").value), method: $("method").value,
    exclude_patient: $("exclude-patient").checked });
  $("more-like").disabled = true;
  try {
    const answer = await post("query", body);
    const record = await json(`images/${encodeURIComponent(ids[0])}`);
    const query = { ...record, name: `more like ${ids.length}: ${ids.join(", ")}`, examples: ids };
    await present(answer, query);
  } catch (e) { fail(e); } finally { updateExamples(); }
}

$("clear-filter").addEventListener("click", clearFilter);
$("concept-step").addEventListener("input", () => {
  const v = Number($("concept-step").value);
  $("concept-value").textContent = v > 0 ? `+${v}` : String(v);
});
$("more-like").addEventListener("click", moreLikeThese);

// --- the closer look ----------------------------------------------------------------------------

async function openDetail(i) {
  const hits = state.answer.hits;
  state.current = (i + hits.length) % hits.length;
  const hit = hits[state.current];
  const query = state.query;
  $("detail-title").textContent = `Result ${hit.rank} of ${hits.length} · cosine ${hit.cosine.toFixed(4)}`;
  $("detail-rank").textContent = `#${hit.rank} ${hit.image_id}`;
  $("detail-query-name").textContent = query.name;
  chips($("detail-query-chips"), query.id ? query.labels : [], null);
  if (!query.id) $("detail-query-chips").replaceChildren();
  chips($("detail-chips"), hit.labels, sharedWith(query));
  const record = $("detail-record");
  record.replaceChildren();
  if (!$("detail").open) $("detail").showModal();
  const q = $("detail-query"), h = $("detail-hit");
  q.alt = `Query chest X-ray ${query.name}`;
  h.alt = `Retrieved chest X-ray ${hit.image_id}, findings: ${findingsText(hit.labels)}`;
  h.removeAttribute("src");
  if (!query.large) query.large = await queryImageUrl(query, LARGE).catch(() => query.url);
  q.src = query.large;
  try {
    const [full, url] = await Promise.all([
      json(`images/${encodeURIComponent(hit.image_id)}`),
      blobUrl(`images/${encodeURIComponent(hit.image_id)}/pixels?size=${LARGE}`),
    ]);
    if (hits[state.current] !== hit) return; // stepped on meanwhile
    h.src = url;
    await showMaps(hit);
    const rows = [["findings", findingsText(full.labels)], ["patient", full.patientId], ["age", full.age],
      ["sex", full.sex], ["view", full.view], ["community", full.community], ["split", full.split],
      ["cosine", hit.cosine.toFixed(4)], ["method", state.answer.method]];
    for (const [k, v] of rows) {
      if (v === null || v === undefined || v === "") continue;
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = String(v);
      record.append(dt, dd);
    }
  } catch (e) { fail(e); }
}

// similarity maps: where the query and this result are alike (GET /explain), over both images
function mapsAvailable() {
  return (state.config.features || []).includes("maps") && state.query && state.query.id && !state.query.examples;
}

async function showMaps(hit) {
  $("maps-toggle").hidden = !mapsAvailable();
  const on = mapsAvailable() && $("show-maps").checked;
  $("maps-note").hidden = !on;
  if (!on) return;
  $("maps-note").textContent = "loading where they are alike…";
  const base = `explain?query=${encodeURIComponent(state.query.id)}&hit=${encodeURIComponent(hit.image_id)}&size=${PREVIEW}`;
  const [q, h] = await Promise.all([blobUrl(`${base}&side=query`), blobUrl(`${base}&side=hit`)]);
  if (state.answer.hits[state.current] !== hit || !$("show-maps").checked) return;
  $("detail-query").src = q;
  $("detail-hit").src = h;
  $("maps-note").textContent = "Where they are alike: each image's cells coloured by their share of the two "
    + "codes' cosine (each map sums to it exactly) · brighter = more of the similarity · one scale for both";
}

$("show-maps").addEventListener("change", () => openDetail(state.current));

function applyLook() {
  const filter = `contrast(${$("contrast").value}%) brightness(${$("brightness").value}%)`;
  $("detail-query").style.filter = filter;
  $("detail-hit").style.filter = filter;
}

$("contrast").addEventListener("input", applyLook);
$("brightness").addEventListener("input", applyLook);
$("prev").addEventListener("click", () => openDetail(state.current - 1));
$("next").addEventListener("click", () => openDetail(state.current + 1));
$("close").addEventListener("click", () => $("detail").close());
for (const id of ["detail-query", "detail-hit"]) {
  $(id).addEventListener("click", () => $(id).parentElement.classList.toggle("full"));
}
$("detail").addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement && e.target.type === "range") return; // sliders use the arrows
  if (e.key === "ArrowRight") { e.preventDefault(); openDetail(state.current + 1); }
  if (e.key === "ArrowLeft") { e.preventDefault(); openDetail(state.current - 1); }
});
$("detail").addEventListener("close", () => {
  const card = document.querySelector(`.card[data-rank="${state.answer && state.answer.hits[state.current].rank}"]`);
  // after the browser's own focus restoring (to the card that opened the dialog): the one last shown
  if (card) setTimeout(() => card.focus(), 0);
});

// --- the neighbourhood --------------------------------------------------------------------------

let graph = null;

async function drawNeighbourhood(answer, query) {
  const ids = answer.hits.map((h) => h.image_id);
  if (query.id) ids.unshift(query.id);
  const sub = await post("subgraph", { ids });
  const threshold = state.health && state.health.threshold;
  const communityOf = Object.fromEntries(sub.nodes.map((n) => [n.id, n.community]));
  const elements = [];
  const rankOf = Object.fromEntries(answer.hits.map((h) => [h.image_id, h.rank]));
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
  const communities = [...new Set(elements.filter((e) => !e.data.source && e.data.community != null).map((e) => e.data.community))];
  const colour = (c) => c == null ? "#777" : COMMUNITY_COLOURS[communities.indexOf(c) % COMMUNITY_COLOURS.length];
  $("neighbourhood").hidden = false;
  if (graph) graph.destroy();
  graph = cytoscape({
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
  graph.on("tap", "node", (evt) => {
    const rank = rankOf[evt.target.id()];
    if (rank) openDetail(rank - 1);
  });
  $("legend").replaceChildren(...communities.map((c) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch"; sw.style.background = colour(c);
    li.append(sw, `community ${c}`);
    return li;
  }), Object.assign(document.createElement("li"), { textContent: `${sub.edges.length} edges among ${sub.nodes.length} archived images` }));
  state.cypher = sub.cypher;
  if (state.config.browser) $("browser-link").href = `${state.config.browser}?cmd=edit&arg=${encodeURIComponent(sub.cypher)}`;
}

$("copy-cypher").addEventListener("click", async () => {
  if (!state.cypher) return;
  try {
    await navigator.clipboard.writeText(state.cypher);
    $("copy-cypher").textContent = "Copied";
  } catch (e) {
    window.prompt("Cypher for Neo4j Browser:", state.cypher);
  }
});

// --- the form -----------------------------------------------------------------------------------

$("query-form").addEventListener("submit", (e) => { e.preventDefault(); search(); });
$("file").addEventListener("change", () => { if (chosenFile()) { $("image-id").value = ""; search(); } });
$("image-id").addEventListener("input", () => { if ($("image-id").value) $("file").value = ""; });
const drop = $("drop");
for (const kind of ["dragenter", "dragover"]) {
  drop.addEventListener(kind, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const kind of ["dragleave", "drop"]) drop.addEventListener(kind, () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  if (!e.dataTransfer.files.length) return;
  if ($("file").disabled) { showError("image files need `cxrneo serve --checkpoint`"); return; }
  $("file").files = e.dataTransfer.files;
  $("image-id").value = "";
  search();
});

start();
