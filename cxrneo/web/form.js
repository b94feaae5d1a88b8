// The search form read as one search's settings, and set from them (a search opened from the address).

import { $ } from "./dom.js";
import { showExamples } from "./examples.js";
import { narrowed, setNarrowing } from "./filters.js";
import { showMark } from "./marking.js";
import * as state from "./state.js";

// {id, method, k, exclude_patient, examples, filter, concepts, region}; throws one line for a value refused here
export function readSettings() {
  const k = Number($("k").value);
  if (!Number.isInteger(k) || k < 1 || k > Number($("k").max)) {
    throw new Error(`K must be a whole number from 1 to ${$("k").max}`);
  }
  const body = narrowed({});
  return { id: $("image-id").value.trim(), method: $("method").value, k, exclude_patient: $("exclude-patient").checked,
    examples: state.examples(), filter: body.filter || null, concepts: body.concepts || null, region: state.region() };
}

export function applySettings(s) {
  $("image-id").value = s.id || "";
  if (s.id) $("file").value = "";
  if ([...$("method").options].some((o) => o.value === s.method)) $("method").value = s.method;
  if (s.k) $("k").value = String(s.k);
  $("exclude-patient").checked = s.exclude_patient;
  setNarrowing(s.filter, s.concepts);
  state.setExamples(s.examples || []);
  showExamples();
  state.setRegion(s.id ? s.region : null, `id:${s.id}`);
  showMark();
}
