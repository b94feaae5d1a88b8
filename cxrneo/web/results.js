// The answer on the page: the warning for an unfamiliar image, the summary and the order line (with the
// control that sorts by similarity and back, the answer itself unchanged), and the result cards (with
// "like this" picks, "keep in PACS" ticks and the link back to the PACS).

import { blobUrl } from "./api.js";
import { openDetail } from "./detail.js";
import { $, el, imageTick } from "./dom.js";
import { updateExamples } from "./examples.js";
import { chips, describe, findingsText, sharedWith } from "./findings.js";
import { showFreshness } from "./freshness.js";
import { keepBox, showKeep } from "./keep.js";
import { alikeWords, FALLBACK, FALLBACK_WHY } from "./likeness.js";
import { REGION_WORDS } from "./marking.js";
import { showError } from "./messages.js";
import * as state from "./state.js";

const THUMB = 256;
const ORDERS = {
  knn: "Most alike first.",
  community: "In the order the community search grew them (not strictly most alike first).",
  hybrid: "Group by group, in the order the community search picked the groups; most alike first within each.",
  diffusion: "By how strongly a walk through the similarity graph from the query reaches them, mixed with likeness.",
};
function summary(answer, query) {
  const shared = sharedWith(query);
  const agree = query.id && query.labels && query.labels.length
    ? answer.hits.filter((h) => h.labels.some((l) => shared.has(l))).length : null;
  return `${answer.hits.length} archived X-rays like ${query.name}`
    + (answer.region ? ` · ${REGION_WORDS}` : "")
    + (agree != null ? ` · ${agree} share a finding with the query` : "")
    + (answer.passing != null ? ` · ${answer.passing} archived X-rays pass the filter` : "");
}

function showOrder(answer) {
  const sorted = state.bySimilarity();
  const fallback = answer.hits.some((h) => h.fallback) && !sorted
    ? ` Those ${FALLBACK} come last, most alike first.` : "";
  $("order-text").textContent = sorted ? "Most alike first (sorted here; the search itself is unchanged)."
    : (ORDERS[answer.method] || "In the order the search gave.") + fallback;
  const toggle = $("sort-toggle");
  toggle.hidden = answer.method === "knn";
  toggle.setAttribute("aria-pressed", String(sorted));
  toggle.textContent = sorted ? "Back to the search's order" : "Sort most alike first";
}

function card(hit, i, shared) {
  const li = el("li");
  const button = el("button", "card");
  button.type = "button";
  button.dataset.id = hit.image_id;
  button.dataset.rank = String(hit.rank);
  const thumb = el("div", "thumb");
  const img = el("img");
  img.alt = `Retrieved chest X-ray ${hit.image_id}, rank ${hit.rank}, findings: ${findingsText(hit.labels)}`;
  thumb.append(img, el("span", "rank", `#${hit.rank}`));
  const body = el("div", "body");
  const list = el("ul", "chips");
  chips(list, hit.labels, shared);
  body.append(el("p", "alike", alikeWords(hit)));
  if (hit.fallback) {
    const mark = el("p", "fallback", FALLBACK);
    mark.title = FALLBACK_WHY;
    body.append(mark);
  }
  body.append(el("p", "id", hit.image_id), list, el("p", "meta", describe(hit)));
  button.append(thumb, body);
  button.addEventListener("click", () => openDetail(state.order().indexOf(i)));
  const pick = imageTick("pick", hit.image_id, `use ${hit.image_id} as an example`, " like this", updateExamples);
  li.append(button, pick);
  const keep = keepBox(hit);
  if (keep) li.append(keep);
  const study = studyLink(hit);
  if (study) li.append(study);
  blobUrl(`images/${encodeURIComponent(hit.image_id)}/pixels?size=${THUMB}`)
    .then((url) => { img.src = url; })
    .catch((e) => { img.alt = `${hit.image_id}: ${e.message}`; thumb.classList.add("missing"); showError(e.message); });
  return li;
}

export function showResults(answer, query) {
  $("unfamiliar").hidden = answer.familiar !== false;
  const why = answer.unfamiliar || "";
  $("unfamiliar-why").textContent = why.charAt(0).toUpperCase() + why.slice(1) + (why && !why.endsWith(".") ? "." : "");
  $("summary").textContent = summary(answer, query);
  $("examples-bar").hidden = !state.offers("examples");
  $("order").hidden = false;
  $("mark-legend").hidden = !(query.id && query.labels && query.labels.length);
  const shared = sharedWith(query);
  $("grid").replaceChildren(...answer.hits.map((hit, i) => card(hit, i, shared)));
  showOrder(answer);
  showFreshness();
  updateExamples();
  showKeep(query);
}

// the shown order: the method's, or most alike first (the cards move; nothing is asked again)
function sortCards() {
  const answer = state.answer();
  if (!answer) return;
  state.sortBySimilarity(!state.bySimilarity());
  const items = [...$("grid").children];
  const byId = new Map(items.map((li) => [li.querySelector(".card").dataset.id, li]));
  $("grid").append(...state.order().map((i) => byId.get(answer.hits[i].image_id)));
  showOrder(answer);
}

export function wireResults() {
  $("sort-toggle").addEventListener("click", sortCards);
}

// the link back to the PACS: a study viewer's address for images that came from one
function studyLink(hit) {
  const template = state.config().viewer_url;
  if (!template || !hit.study_uid) return null;
  const a = el("a", "study", "open the study");
  a.href = template.replaceAll("{StudyInstanceUID}", encodeURIComponent(hit.study_uid))
    .replaceAll("{SeriesInstanceUID}", encodeURIComponent(hit.series_uid || ""))
    .replaceAll("{SOPInstanceUID}", encodeURIComponent(hit.image_id));
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  a.setAttribute("aria-label", `open the study of ${hit.image_id} in the image viewer`);
  return a;
}
