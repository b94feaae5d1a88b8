// Asking the service: one search from the form's settings (an archived id, an image file, or examples),
// "More like these", the unsteered answer a finding step is compared with, and showing the answer.

import { json, post, releaseImages } from "./api.js";
import { $ } from "./dom.js";
import { selectedExamples, showExamples } from "./examples.js";
import { applySettings, readSettings } from "./form.js";
import { markStale } from "./freshness.js";
import { showMark } from "./marking.js";
import { fail, showError } from "./messages.js";
import { drawNeighbourhood } from "./neighbourhood.js";
import { showQuery, showSteering } from "./panel.js";
import { showResults } from "./results.js";
import * as state from "./state.js";
import { recordSearch } from "./url.js";

export const chosenFile = () => $("file").files && $("file").files[0];

const body = (s, target) => ({ ...target, k: s.k, method: s.method, exclude_patient: s.exclude_patient,
  ...(s.filter ? { filter: s.filter } : {}), ...(s.concepts ? { concepts: s.concepts } : {}),
  ...(s.region ? { region: s.region } : {}) });

async function ask(s, file) {
  if (file) {
    const form = new FormData();
    form.append("file", file);
    for (const [name, value] of Object.entries(body(s, {}))) {
      if (name === "exclude_patient") continue; // about an archived id only
      form.append(name, typeof value === "object" ? JSON.stringify(value) : String(value)); // objects as JSON text
    }
    const answer = await json("query/image", { method: "POST", body: form });
    if (answer.duplicate_of) { // the upload is an archived film: shown as that film
      const record = await json(`images/${encodeURIComponent(answer.duplicate_of)}`);
      return { answer, query: { ...record, id: answer.duplicate_of, name: answer.duplicate_of, upload: file.name } };
    }
    return { answer, query: { id: null, name: file.name, labels: null, file } };
  }
  const ids = s.id ? [s.id, ...s.examples.filter((e) => e !== s.id)] : s.examples;
  const answer = await post("query", body(s, ids.length > 1 || !s.id ? { ids } : { id: s.id }));
  const record = await json(`images/${encodeURIComponent(ids[0])}`);
  const name = s.id || `${ids.length} example${ids.length > 1 ? "s" : ""}`;
  return { answer, query: { ...record, name, ...(ids.length > 1 || !s.id ? { examples: ids } : {}) } };
}

// one search from the form (`fromAddress`: opened from the page's address, which then stays as it is)
export async function search(fromAddress = false) {
  showError("");
  let s;
  try { s = readSettings(); } catch (e) { showError(e.message); return; }
  const file = s.id ? null : chosenFile();
  if (file && s.examples.length) { // an upload is not combined with examples: cleared, and said so
    state.setExamples([]);
    s.examples = [];
    showExamples("The examples were cleared: an uploaded file is searched on its own.");
  }
  if (!s.id && !file && !s.examples.length) { showError("Choose an image file or type an archived image id."); return; }
  if (s.region && state.regionFilm() !== (s.id ? `id:${s.id}` : file ? `file:${file.name}` : "")) {
    state.setRegion(null, ""); // a box marked on another film: not this search's
    s.region = null;
    showMark();
  }
  if (s.region && s.examples.length) {
    showError("A region is searched on its own film: clear the region, or remove the examples.");
    return;
  }
  $("search").disabled = true;
  $("summary").textContent = "searching…";
  try {
    const { answer, query } = await ask(s, file);
    await present(answer, query, s);
    if (!fromAddress) recordSearch(file ? { ...s, id: "", region: null } : s);
    $("url-note").hidden = !file;
  } catch (e) {
    $("summary").textContent = "";
    markStale("The last search failed - the results below are from the search before it");
    fail(e, Boolean(file));
  } finally {
    $("search").disabled = false;
  }
}

async function present(answer, query, s) {
  releaseImages();
  state.show(answer, query, s.concepts);
  await showQuery(query);
  showMark();
  showResults(answer, query, s.concepts);
  drawNeighbourhood(answer, query).catch((e) => fail(e));
  if (s.concepts && !query.file) compareUnsteered(answer, query, s).catch(() => showSteering(null));
}

// how many hits carry the steered finding, with the step and without it
async function compareUnsteered(answer, query, s) {
  showSteering(null);
  const { answer: plain } = await ask({ ...s, concepts: null }, null);  // the same region, if any
  if (state.answer() === answer) showSteering(plain);
}

// "More like these": the ticked results join the examples, and the search runs with them
export async function moreLikeThese() {
  const shown = state.query();
  const picked = selectedExamples().filter((id) => !shown || id !== shown.id);
  if (shown && (shown.upload || !shown.id)) { // an upload takes no examples: its archived twin does, or none
    $("file").value = "";
    $("image-id").value = shown.id || "";
  }
  state.setExamples([...state.examples(), ...picked]);
  const hadRegion = Boolean(state.region());
  state.setRegion(null, ""); // examples are whole films: a marked region does not join them
  showMark();
  showExamples(hadRegion ? "The marked region was cleared: examples are searched as whole films." : "");
  await search();
}

// Back or Forward to another search's address
export async function openAddress(s) {
  applySettings(s);
  if (s.id || s.examples.length) await search(true);
  else markStale("That search was of an uploaded file, which the address cannot hold: choose the file again");
}
