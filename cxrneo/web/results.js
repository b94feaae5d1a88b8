// The query and its answer on the page: the query panel, the result cards (with "like this" picks and the
// link back to the PACS) and the summary line.

import { blobUrl, queryImageUrl } from "./api.js";
import { openDetail } from "./detail.js";
import { $, el } from "./dom.js";
import { chips, describe, findingsText, sharedWith } from "./findings.js";
import { showError } from "./messages.js";
import * as state from "./state.js";

const THUMB = 256;
const PREVIEW = 512;

export async function showQuery(query) {
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

function summary(answer, query, concepts) {
  const shared = sharedWith(query);
  const agree = query.id && query.labels && query.labels.length
    ? answer.hits.filter((h) => h.labels.some((l) => shared.has(l))).length : null;
  return `${answer.hits.length} archived X-rays by ${answer.method} retrieval for ${query.name}`
    + (agree != null ? ` · ${agree} share a finding with the query` : "")
    + (answer.method === "knn" ? " · ranked by cosine" : ` · in the order ${answer.method} retrieval grew them (kNN ranks by cosine)`)
    + (answer.passing != null ? ` · ${answer.passing} archived X-rays pass the filter` : "")
    + (concepts ? ` · steered: ${Object.entries(concepts).map(([f, v]) => `${f} ${v > 0 ? "+" : ""}${v}`).join(", ")}` : "")
    + ` · ${answer.query_ms.toFixed(0)} ms`;
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
  thumb.append(img, el("span", "rank", `#${hit.rank}`), el("span", "cos", `cos ${hit.cosine.toFixed(3)}`));
  const body = el("div", "body");
  const list = el("ul", "chips");
  chips(list, hit.labels, shared);
  body.append(el("p", "id", hit.image_id + (hit.fallback ? " (cosine fallback)" : "")), list,
    el("p", "meta", describe(hit)));
  button.append(thumb, body);
  button.addEventListener("click", () => openDetail(i));
  const pick = el("label", "pick");
  const box = el("input");
  box.type = "checkbox";
  box.dataset.id = hit.image_id;
  box.setAttribute("aria-label", `use ${hit.image_id} as an example`);
  box.addEventListener("change", updateExamples);
  pick.append(box, document.createTextNode(" like this"));
  li.append(button, pick);
  const study = studyLink(hit);
  if (study) li.append(study);
  blobUrl(`images/${encodeURIComponent(hit.image_id)}/pixels?size=${THUMB}`)
    .then((url) => { img.src = url; })
    .catch((e) => { img.alt = `${hit.image_id}: ${e.message}`; thumb.classList.add("missing"); showError(e.message); });
  return li;
}

export function showResults(answer, query, concepts) {
  $("summary").textContent = summary(answer, query, concepts);
  $("examples-bar").hidden = !state.offers("examples");
  const shared = sharedWith(query);
  $("grid").replaceChildren(...answer.hits.map((hit, i) => card(hit, i, shared)));
  updateExamples();
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

// "More like these": the results ticked as examples
export function selectedExamples() {
  return [...document.querySelectorAll("#grid .pick input:checked")].map((b) => b.dataset.id);
}

export function updateExamples() {
  const ids = selectedExamples();
  $("more-like").disabled = ids.length === 0;
  $("more-like").textContent = ids.length ? `More like the ${ids.length} selected` : "More like the selected";
}
