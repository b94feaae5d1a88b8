// The closer look: query and one result side by side in a dialog, stepped with the arrows (in the order the
// cards are shown), with contrast and brightness, the stored record (graph internals under "Advanced"), and
// the similarity maps (where the two are alike, GET /explain) with their colour key; after a region query,
// the marked box outlined on the query film and the maps of that region against the result.

import { blobUrl, json, queryImageUrl } from "./api.js";
import { $, el } from "./dom.js";
import { chips, findingsText, sharedWith } from "./findings.js";
import { alikeWords } from "./likeness.js";
import { place, REGION_WORDS } from "./marking.js";
import { fail } from "./messages.js";
import * as state from "./state.js";

const LARGE = 1024; // the plain films and their overlays alike: one size with and without the maps

function rows(list, pairs) {
  list.replaceChildren();
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === "") continue;
    list.append(el("dt", "", k), el("dd", "", String(v)));
  }
}

export async function openDetail(position) {
  const n = state.order().length;
  state.setCurrent(position);
  const hit = state.currentHit();
  const query = state.query();
  $("detail-title").textContent = `Result ${hit.rank} of ${n}`;
  $("detail-rank").textContent = `#${hit.rank} ${hit.image_id}`;
  $("detail-query-name").textContent = query.name;
  const region = state.answer().region;
  $("detail-region-words").hidden = !region;
  $("detail-region-words").textContent = region ? `${REGION_WORDS} (dashed box)` : "";
  outline();
  if (query.id) chips($("detail-query-chips"), query.labels, null);
  else $("detail-query-chips").replaceChildren();
  chips($("detail-chips"), hit.labels, sharedWith(query));
  $("detail-record").replaceChildren();
  $("detail-advanced").replaceChildren();
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
    rows($("detail-record"), [["findings", findingsText(full.labels)], ["how alike", alikeWords(hit)],
      ["patient", full.patientId], ["age", full.age], ["sex", full.sex], ["view", full.view]]);
    rows($("detail-advanced"), [["cosine", hit.cosine.toFixed(4)], ["method", state.answer().method],
      ["community", full.community], ["split", full.split], ["added by similarity alone", hit.fallback ? "yes" : ""]]);
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
  $("maps-key").hidden = !on;
  if (!on) return;
  $("maps-words").textContent = "loading where they are alike…";
  const region = state.answer().region;
  const base = `explain?query=${encodeURIComponent(state.query().id)}&hit=${encodeURIComponent(hit.image_id)}&size=${LARGE}`
    + (region ? `&region=${region.join(",")}` : "");
  const [q, h] = await Promise.all([blobUrl(`${base}&side=query`), blobUrl(`${base}&side=hit`)]);
  if (state.currentHit() !== hit || !$("show-maps").checked) return;
  $("detail-query").src = q;
  $("detail-hit").src = h;
  $("maps-words").textContent = (region
    ? "Coloured where the marked region and the result are alike: on the query only the region counts; "
    : "Coloured where the two films are alike: ")
    + "the brighter the colour, the more that area adds to their likeness. One scale for both films.";
}

// the answer's region outlined on the query film (fitted or at full size)
function outline() {
  const answer = state.answer();
  place($("detail-region"), $("detail-query"), answer && answer.region);
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
    $(id).addEventListener("click", () => {
      const full = $(id).parentElement.classList.toggle("full");
      $(id).title = full ? "click to fit the frame" : "click for full size";
      outline();
    });
  }
  $("detail-query").addEventListener("load", outline);
  new ResizeObserver(outline).observe($("detail-query"));
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
