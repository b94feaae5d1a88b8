// The closer look: query and one result side by side in a dialog, stepped with the arrows, with contrast and
// brightness, the stored record, and the similarity maps (where the two are alike, GET /explain).

import { blobUrl, json, queryImageUrl } from "./api.js";
import { $, el } from "./dom.js";
import { chips, findingsText, sharedWith } from "./findings.js";
import { fail } from "./messages.js";
import * as state from "./state.js";

const LARGE = 1024, PREVIEW = 512;

export async function openDetail(i) {
  const hits = state.answer().hits;
  state.setCurrent(i);
  const hit = state.currentHit();
  const query = state.query();
  $("detail-title").textContent = `Result ${hit.rank} of ${hits.length} · cosine ${hit.cosine.toFixed(4)}`;
  $("detail-rank").textContent = `#${hit.rank} ${hit.image_id}`;
  $("detail-query-name").textContent = query.name;
  if (query.id) chips($("detail-query-chips"), query.labels, null);
  else $("detail-query-chips").replaceChildren();
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
    if (state.currentHit() !== hit) return; // stepped on meanwhile
    h.src = url;
    await showMaps(hit);
    const rows = [["findings", findingsText(full.labels)], ["patient", full.patientId], ["age", full.age],
      ["sex", full.sex], ["view", full.view], ["community", full.community], ["split", full.split],
      ["cosine", hit.cosine.toFixed(4)], ["method", state.answer().method]];
    for (const [k, v] of rows) {
      if (v === null || v === undefined || v === "") continue;
      record.append(el("dt", "", k), el("dd", "", String(v)));
    }
  } catch (e) { fail(e); }
}

// similarity maps: where the query and this result are alike, over both images
function mapsAvailable() {
  const query = state.query();
  return state.offers("maps") && query && query.id && !query.examples;
}

async function showMaps(hit) {
  $("maps-toggle").hidden = !mapsAvailable();
  const on = mapsAvailable() && $("show-maps").checked;
  $("maps-note").hidden = !on;
  if (!on) return;
  $("maps-note").textContent = "loading where they are alike…";
  const base = `explain?query=${encodeURIComponent(state.query().id)}&hit=${encodeURIComponent(hit.image_id)}&size=${PREVIEW}`;
  const [q, h] = await Promise.all([blobUrl(`${base}&side=query`), blobUrl(`${base}&side=hit`)]);
  if (state.currentHit() !== hit || !$("show-maps").checked) return;
  $("detail-query").src = q;
  $("detail-hit").src = h;
  $("maps-note").textContent = "Where they are alike: each image's cells coloured by their share of the two "
    + "codes' cosine (each map sums to it exactly) · brighter = more of the similarity · one scale for both";
}

function applyLook() {
  const filter = `contrast(${$("contrast").value}%) brightness(${$("brightness").value}%)`;
  $("detail-query").style.filter = filter;
  $("detail-hit").style.filter = filter;
}

// the dialog's controls, once at start-up
export function wireDetail() {
  $("show-maps").addEventListener("change", () => openDetail(state.current()));
  $("contrast").addEventListener("input", applyLook);
  $("brightness").addEventListener("input", applyLook);
  $("prev").addEventListener("click", () => openDetail(state.current() - 1));
  $("next").addEventListener("click", () => openDetail(state.current() + 1));
  $("close").addEventListener("click", () => $("detail").close());
  for (const id of ["detail-query", "detail-hit"]) {
    $(id).addEventListener("click", () => $(id).parentElement.classList.toggle("full"));
  }
  $("detail").addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement && e.target.type === "range") return; // sliders use the arrows
    if (e.key === "ArrowRight") { e.preventDefault(); openDetail(state.current() + 1); }
    if (e.key === "ArrowLeft") { e.preventDefault(); openDetail(state.current() - 1); }
  });
  $("detail").addEventListener("close", () => {
    const hit = state.currentHit();
    const card = hit && document.querySelector(`.card[data-rank="${hit.rank}"]`);
    // after the browser's own focus restoring (to the card that opened the dialog): the one last shown
    if (card) setTimeout(() => card.focus(), 0);
  });
}
