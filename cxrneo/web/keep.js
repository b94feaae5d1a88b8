// "Save to PACS": the results ticked "keep" are stored with the query in the PACS as a DICOM key object
// (POST /keep) under the chosen title, with the note. Offered only when the service writes to a PACS and the
// caller's role may keep (/config's "keep"), for a query and hits that came from the PACS (they have a study).

import { post } from "./api.js";
import { $, imageTick } from "./dom.js";
import * as state from "./state.js";

const offered = () => (state.config() && state.config().keep) || null;
const ticked = () => [...document.querySelectorAll("#grid .keep-pick input:checked")].map((b) => b.dataset.id);

// the titles and the note's bound, once /config is known
export function setUpKeep(config) {
  const keep = config.keep;
  $("keep-bar").hidden = true;
  if (!keep) return;
  $("keep-title").replaceChildren(...Object.entries(keep.titles).map(([word, meaning]) => new Option(meaning, word)));
  $("keep-note").maxLength = keep.max_note;
}

// a card's "keep" tick (null: this hit cannot be kept, or nothing can)
export function keepBox(hit) {
  if (!offered() || !hit.study_uid) return null;
  return imageTick("pick keep-pick", hit.image_id, `keep ${hit.image_id} in the PACS`, " keep in PACS", updateKeep);
}

function updateKeep() {
  const n = ticked().length;
  const max = (offered() || {}).max_hits || 0;
  $("keep-save").disabled = n === 0 || n > max;
  $("keep-save").textContent = n ? `Save ${n} to PACS` : "Save to PACS";
}

function say(text, failed) {
  $("keep-message").textContent = text;
  $("keep-message").classList.toggle("failed", failed);
}

// the bar above the results: for an archived query from the PACS, when the service offers keeping
export function showKeep(query) {
  $("keep-bar").hidden = !(offered() && query && query.id && !query.examples && query.studyUid);
  say("", false);
  updateKeep();
}

async function save() {
  const query = state.query();
  const hits = ticked();
  if (!query || !query.id || !hits.length) return;
  $("keep-save").disabled = true;
  say("saving…", false);
  try {
    const kept = await post("keep", { query: query.id, hits, title: $("keep-title").value, note: $("keep-note").value });
    say(kept.stored
      ? `Saved to the PACS: the query and ${kept.references - 1} similar case${kept.references > 2 ? "s" : ""} as “${kept.title}”, in the query's study.`
      : `Already in the PACS: these cases were saved as “${kept.title}” before; nothing was stored again.`, false);
  } catch (e) {
    say(`Not saved to the PACS: ${e.detail || e.message}`, true);
  } finally {
    updateKeep();
  }
}

export function wireKeep() {
  $("keep-save").addEventListener("click", save);
}
