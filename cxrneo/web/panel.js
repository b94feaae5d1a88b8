// The query panel: the query film with its findings, what an upload turned out to be (an archived film), the
// examples it is searched with, and the finding step with how many results carry that finding.

import { queryImageUrl } from "./api.js";
import { $ } from "./dom.js";
import { showExamples } from "./examples.js";
import { stepWords } from "./filters.js";
import { chips, describe, findingsText } from "./findings.js";
import * as state from "./state.js";

const PREVIEW = 512;

export async function showQuery(query) {
  $("query-view").hidden = false;
  $("query-empty").hidden = true;
  $("query-name").textContent = query.name;
  $("query-twin").hidden = !query.upload;
  $("query-twin").textContent = query.upload
    ? `Your upload ${query.upload} is this archived film: ${query.id}. Shown with its stored findings.` : "";
  if (query.id) {
    chips($("query-chips"), query.labels);
    $("query-meta").textContent = describe(query);
  } else {
    $("query-chips").replaceChildren();
    $("query-meta").textContent = "a new image (not in the archive): findings unknown";
  }
  showExamples();
  showSteering(null);
  const img = $("query-img");
  img.alt = `Query chest X-ray ${query.name}` + (query.id ? `, findings: ${findingsText(query.labels)}` : "");
  img.removeAttribute("src");
  query.url = await queryImageUrl(query, PREVIEW);
  img.src = query.url;
}

const carrying = (hits, finding) => hits.filter((h) => (h.labels || []).includes(finding)).length;

// the finding step of the answer on show; `plain`: the same search's answer without it (null: not known yet)
export function showSteering(plain) {
  const concepts = state.concepts(), answer = state.answer();
  $("steer").hidden = !concepts;
  if (!concepts || !answer) return;
  const [finding] = Object.keys(concepts);
  const name = finding.replaceAll("_", " ");
  const n = answer.hits.length;
  $("steer-step").textContent = `Steered: ${stepWords(concepts)}`;
  $("steer-count").textContent = `${name} in ${carrying(answer.hits, finding)} of ${n} results`
    + (plain ? ` (${carrying(plain.hits, finding)} of ${plain.hits.length} without the step)` : "");
}
