// Whether the results on show still answer the page's settings: any change of method, K, a filter, the
// finding slider, "leave out this patient" or the examples marks them out of date at once (a banner read out
// by screen readers, the results dimmed) until the next Search. Nothing re-runs by itself.

import { $ } from "./dom.js";
import * as state from "./state.js";

export const CHANGED = "Settings changed - press Search to update";

export function markStale(why = CHANGED) {
  if (!state.answer()) return;
  state.setStale(why);
  showFreshness();
}

export function showFreshness() {
  const why = state.stale();
  $("stale").textContent = why;
  $("results").classList.toggle("is-stale", Boolean(why));
}

// once at start-up: the form's controls (not the query's own id or file: choosing a query is a new search)
export function wireFreshness() {
  const changed = (e) => { if (!["image-id", "file"].includes(e.target.id)) markStale(); };
  $("query-form").addEventListener("input", changed);
  $("query-form").addEventListener("change", changed);
  $("finding-toggles").addEventListener("click", (e) => { if (e.target.closest(".toggle")) markStale(); });
  $("clear-filter").addEventListener("click", () => markStale());
}
