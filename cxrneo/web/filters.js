// Narrowing a search: the filter controls, built from GET /config's "filters" (one description per field:
// name, kind, label, help; "choice" with choices, "integer" with minimum/maximum), and the finding slider.
// The request's filter is {name: value} for every field set. A field added on the service shows up here
// with no edit to the page: "findings" fields share one row of finding chips (each click moves a chip on
// to the next such field, in the order /config gives them, then back to "either"); every other kind is
// one labelled control, the first few in the main row and the rest under "More filters".
// The controls themselves hold what is set (data-field on each, data-state on each chip): no state here.

import { $, el, pretty } from "./dom.js";
import { NO_FINDING } from "./findings.js";

const MAIN_ROW = 4; // fields other than findings shown at once; the rest wait under "More filters"
const KINDS = new Set(["findings", "choice", "integer", "strings", "integers"]);
const MARKS = { findings: "✓", any_findings: "∨", without: "✗" }; // a chip's mark per field; others get "•"
const markOf = (name) => MARKS[name] || "•";

// --- building the controls ----------------------------------------------------------------------

function chip(finding, cycle) {
  const b = el("button", "toggle");
  b.type = "button";
  b.dataset.finding = finding;
  const show = (state) => {
    const field = cycle.find((f) => f.name === state);
    b.dataset.state = state;
    b.textContent = (field ? markOf(field.name) + " " : "") + pretty(finding);
    b.setAttribute("aria-label", `${pretty(finding)}: ${field ? field.label.toLowerCase() : "either"}`);
    b.title = field ? field.help : "";
  };
  show("");
  b.addEventListener("click", () => {
    const states = ["", ...cycle.map((f) => f.name)];
    show(states[(states.indexOf(b.dataset.state) + 1) % states.length]);
  });
  b.addEventListener("cxrneo:clear", () => show(""));
  b.addEventListener("cxrneo:set", (e) => show(e.detail));
  return b;
}

function control(field) {
  const id = `f-${field.name.replaceAll("_", "-")}`;
  const box = el("div", `field filter-field kind-${field.kind}`);
  const label = el("label", "", field.label);
  label.htmlFor = id;
  let input;
  if (field.kind === "choice") {
    input = el("select");
    input.append(new Option("any", ""), ...(field.choices || []).map((c) => new Option(String(c), String(c))));
  } else {
    input = el("input");
    input.autocomplete = "off";
    input.spellcheck = false;
    if (field.kind === "integer") {
      input.type = "number";
      input.inputMode = "numeric";
      input.step = "1";
      if (field.minimum != null) input.min = String(field.minimum);
      if (field.maximum != null) input.max = String(field.maximum);
    } else {
      input.type = "text";
      const example = /\(e\.g\. ([^)]+)\)/.exec(field.help || ""); // "View positions, any of (e.g. PA, AP)"
      input.placeholder = example ? example[1] : field.kind === "integers" ? "e.g. 3, 7" : "a, b, …";
    }
  }
  input.id = id;
  input.dataset.field = field.name;
  input.dataset.kind = field.kind;
  input.dataset.label = field.label;
  if (field.help) {
    const help = el("span", "sr-only", field.help);
    help.id = `${id}-help`;
    input.setAttribute("aria-describedby", help.id);
    input.title = field.help;
    box.append(label, input, help);
  } else {
    box.append(label, input);
  }
  return box;
}

export function setUpNarrowing(config) {
  const features = config.features || [];
  $("narrow").hidden = !features.includes("filters");
  if (window.matchMedia("(max-width: 700px)").matches) $("narrow").open = false; // a phone: results first
  const fields = features.includes("filters") ? (config.filters || []).filter((f) => KINDS.has(f.kind)) : [];
  const cycle = fields.filter((f) => f.kind === "findings");
  $("finding-filter").hidden = cycle.length === 0;
  $("findings-hint").replaceChildren("click to cycle: ", ...cycle.flatMap((f) => {
    const key = el("span", "key", `${markOf(f.name)} ${f.label.toLowerCase()}`);
    key.dataset.state = f.name;
    return [key, " · "];
  }), "either");
  $("finding-toggles").replaceChildren(...(cycle.length ? config.findings || [] : []).map((f) => chip(f, cycle)));
  const others = fields.filter((f) => f.kind !== "findings");
  $("filter-fields").replaceChildren(...others.slice(0, MAIN_ROW).map(control));
  $("more-fields").replaceChildren(...others.slice(MAIN_ROW).map(control));
  $("more-filters").hidden = others.length <= MAIN_ROW;
  $("slider-row").hidden = !features.includes("sliders");
  $("concept").replaceChildren(new Option("none", ""),
    ...(config.findings || []).filter((f) => f !== NO_FINDING).map((f) => new Option(pretty(f), f)));
}

// --- reading them -------------------------------------------------------------------------------

const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

// one control's value for the request (undefined: not set); a value the field refuses throws one line
function valueOf(input) {
  const text = input.value.trim(), label = input.dataset.label;
  switch (input.dataset.kind) {
    case "choice":
      return text || undefined;
    case "integer": {
      const low = input.min === "" ? -Infinity : Number(input.min), high = input.max === "" ? Infinity : Number(input.max);
      if (text === "" && !input.validity.badInput) return undefined;
      const v = Number(text);
      if (text === "" || !Number.isInteger(v) || v < low || v > high) {
        throw new Error(`${label}: a whole number` + (input.min !== "" && input.max !== "" ? ` from ${low} to ${high}` : ""));
      }
      return v;
    }
    case "integers": {
      const items = list(text);
      if (items.some((s) => !/^-?\d+$/.test(s))) throw new Error(`${label}: whole numbers separated by commas`);
      return items.length ? items.map(Number) : undefined;
    }
    default: { // strings
      const items = list(text);
      return items.length ? items : undefined;
    }
  }
}

// the request's filter (null: nothing set); `strict` false skips values the fields would refuse
function currentFilter(strict = true) {
  if ($("narrow").hidden) return null;
  const f = {};
  for (const b of document.querySelectorAll("#finding-toggles .toggle")) {
    if (b.dataset.state) (f[b.dataset.state] ||= []).push(b.dataset.finding);
  }
  for (const input of document.querySelectorAll("#narrow [data-field]")) {
    let v;
    try { v = valueOf(input); } catch (e) { if (strict) throw e; }
    if (v !== undefined) f[input.dataset.field] = v;
  }
  return Object.keys(f).length ? f : null;
}

export function currentConcepts() {
  const name = $("concept").value, step = Number($("concept-step").value);
  return !$("slider-row").hidden && name && step !== 0 ? { [name]: step } : null;
}

function showCounts(filter, concepts) {
  const active = (filter ? Object.keys(filter).length : 0) + (concepts ? 1 : 0);
  $("narrow-state").textContent = active ? `(${active} condition${active > 1 ? "s" : ""} set)` : "";
  const more = [...document.querySelectorAll("#more-fields [data-field]")]
    .filter((input) => filter && input.dataset.field in filter).length;
  $("more-state").textContent = more ? `(${more} set)` : "";
}

// `body` with the filter and finding steps that are set (throws one line for a value a field refuses)
export function narrowed(body) {
  const filter = currentFilter(), concepts = currentConcepts();
  showCounts(filter, concepts);
  return { ...body, ...(filter ? { filter } : {}), ...(concepts ? { concepts } : {}) };
}

export function clearFilter() {
  for (const b of document.querySelectorAll("#finding-toggles .toggle")) b.dispatchEvent(new Event("cxrneo:clear"));
  for (const input of document.querySelectorAll("#narrow [data-field]")) input.value = "";
  $("concept").value = "";
  $("concept-step").value = "0";
  $("concept-value").textContent = "0";
  showCounts(null, null);
}

// the controls set to a request's filter and finding step (a search opened from the page's address)
export function setNarrowing(filter, concepts) {
  clearFilter();
  for (const b of document.querySelectorAll("#finding-toggles .toggle")) {
    const field = Object.keys(filter || {}).find((name) => (filter[name] || []).includes?.(b.dataset.finding));
    if (field) b.dispatchEvent(new CustomEvent("cxrneo:set", { detail: field }));
  }
  for (const input of document.querySelectorAll("#narrow [data-field]")) {
    const v = filter ? filter[input.dataset.field] : undefined;
    if (v !== undefined && v !== null) input.value = Array.isArray(v) ? v.join(", ") : String(v);
  }
  const [name, step] = Object.entries(concepts || {})[0] || [];
  if (name && [...$("concept").options].some((o) => o.value === name)) {
    $("concept").value = name;
    $("concept-step").value = String(step);
    showStep();
  }
  showCounts(filter, currentConcepts());
}

// the slider's direction and step in words: "More Effusion, +0.5"
export function stepWords(concepts) {
  return Object.entries(concepts || {}).map(([f, v]) => `${v > 0 ? "More" : "Less"} ${pretty(f)}, ${v > 0 ? "+" : ""}${v}`)
    .join("; ");
}

function showStep() {
  const v = Number($("concept-step").value);
  $("concept-value").textContent = v > 0 ? `+${v}` : String(v);
}

// the controls' own events, once at start-up
export function wireFilters() {
  $("clear-filter").addEventListener("click", clearFilter);
  $("concept-step").addEventListener("input", showStep);
  for (const kind of ["input", "change", "click"]) {
    $("narrow").addEventListener(kind, () => showCounts(currentFilter(false), currentConcepts()));
  }
}
