// "More like these": the archived images ticked "like this" on the results join the query as examples. They
// stay on show in the query panel as thumbnails ("query + 2 examples"), each removable, and every Search
// uses them until removed; removing one marks the results out of date.

import { blobUrl } from "./api.js";
import { $, el } from "./dom.js";
import { markStale } from "./freshness.js";
import * as state from "./state.js";

const THUMB = 128;

// the results ticked "like this"
export function selectedExamples() {
  return [...document.querySelectorAll("#grid .pick input:checked")].map((b) => b.dataset.id);
}

export function updateExamples() {
  const n = selectedExamples().length;
  $("more-like").disabled = n === 0;
  const query = state.query();
  const base = query && query.id && !query.examples?.includes(query.id) ? "query" : "";
  const total = state.examples().length + n;
  $("more-like").textContent = n
    ? `Search with ${base ? "the query + " : ""}${total} example${total > 1 ? "s" : ""}`
    : "More like the selected";
}

function thumbnail(id) {
  const li = el("li", "example");
  const img = el("img");
  img.alt = `example ${id}`;
  blobUrl(`images/${encodeURIComponent(id)}/pixels?size=${THUMB}`).then((url) => { img.src = url; }).catch(() => {});
  const remove = el("button", "remove", "✕");
  remove.type = "button";
  remove.dataset.id = id;
  remove.title = `remove ${id} from the examples`;
  remove.setAttribute("aria-label", `remove example ${id}`);
  remove.addEventListener("click", () => {
    state.setExamples(state.examples().filter((e) => e !== id));
    showExamples();
    markStale("Examples changed - press Search to update");
  });
  li.append(img, el("span", "example-id", id), remove);
  return li;
}

// the query panel's examples (hidden when there are none)
export function showExamples(note = "") {
  const ids = state.examples();
  $("examples").hidden = ids.length === 0 && !note;
  const withQuery = Boolean($("image-id").value.trim());
  const many = `${ids.length} example${ids.length > 1 ? "s" : ""}`;
  $("examples-title").textContent = ids.length ? (withQuery ? `Query + ${many}` : many) : "";
  $("examples-note").textContent = note || (ids.length ? "every Search uses them until removed" : "");
  $("example-list").replaceChildren(...ids.map(thumbnail));
  updateExamples();
}
