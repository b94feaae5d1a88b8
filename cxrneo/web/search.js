// Asking the service: a query by an archived id or an image file, "More like these", and showing the answer.

import { json, post, releaseImages } from "./api.js";
import { $ } from "./dom.js";
import { currentConcepts, narrowed } from "./filters.js";
import { fail, showError } from "./messages.js";
import { drawNeighbourhood } from "./neighbourhood.js";
import { selectedExamples, showQuery, showResults, updateExamples } from "./results.js";
import * as state from "./state.js";

export const chosenFile = () => $("file").files && $("file").files[0];

export async function search() {
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
  const concepts = currentConcepts();
  state.show(answer, query, concepts);
  await showQuery(query);
  showResults(answer, query, concepts);
  drawNeighbourhood(answer, query).catch(fail);
}

export async function moreLikeThese() {
  showError("");
  const ids = selectedExamples();
  const shown = state.query();
  if (shown && shown.id && !ids.includes(shown.id)) ids.unshift(shown.id);
  $("more-like").disabled = true;
  try {
    const body = narrowed({ ids, k: Number($("k").value), method: $("method").value,
      exclude_patient: $("exclude-patient").checked });
    const answer = await post("query", body);
    const record = await json(`images/${encodeURIComponent(ids[0])}`);
    const query = { ...record, name: `more like ${ids.length}: ${ids.join(", ")}`, examples: ids };
    await present(answer, query);
  } catch (e) { fail(e); } finally { updateExamples(); }
}
