// Findings as coloured chips (white text on each colour: contrast at least 4.5:1, tests/unit/test_chip_contrast.py),
// and one line about an image's patient and view.

import { el, pretty } from "./dom.js";

export const NO_FINDING = "No Finding";
// one colour per finding (NIH ChestX-ray14, then CheXpert); others get one from their name
const FINDING_COLOURS = {
  Atelectasis: "#b4461f", Cardiomegaly: "#a3338c", Consolidation: "#2f6db5", Edema: "#167373",
  Effusion: "#3f7d20", Emphysema: "#7a5cc7", Fibrosis: "#8a6d1b", Hernia: "#5a6b7a", Infiltration: "#c23a5a",
  Mass: "#a35a0e", Nodule: "#8f7400", Pleural_Thickening: "#41708c", Pneumonia: "#b0306a", Pneumothorax: "#1f7f5c",
  "Enlarged Cardiomediastinum": "#8c3fa8", "Lung Opacity": "#3b6fa0", "Lung Lesion": "#a85b2f",
  "Pleural Effusion": "#3f7d20", "Pleural Other": "#41708c", Fracture: "#8b4b4b", "Support Devices": "#55606b",
};

export function colourOf(finding) {
  if (FINDING_COLOURS[finding]) return FINDING_COLOURS[finding];
  let h = 0;
  for (const c of finding) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h} 45% 30%)`;
}

// fill `list` with one chip per finding; `shared` (a Set) marks those the query shows too
export function chips(list, labels, shared) {
  list.replaceChildren();
  const names = labels && labels.length ? labels : [NO_FINDING];
  for (const name of names) {
    const li = el("li", "chip", pretty(name));
    if (name === NO_FINDING) li.classList.add("none");
    else li.style.background = colourOf(name);
    if (shared && shared.has(name)) {
      li.classList.add("shared");
      li.title = "also a finding of the query";
      li.setAttribute("aria-label", `${pretty(name)} (also a finding of the query)`);
    }
    list.append(li);
  }
}

export function describe(r) {
  const parts = [];
  if (r.patient_id || r.patientId) parts.push(`patient ${r.patient_id || r.patientId}`);
  const who = [r.age != null ? `${r.age} y` : "", r.sex || ""].filter(Boolean).join(" ");
  if (who) parts.push(who);
  if (r.view) parts.push(r.view);
  return parts.join(" · ");
}

export const findingsText = (labels) => pretty(labels && labels.length ? labels.join(", ") : NO_FINDING);

// the findings of an archived query (a new image's are unknown: none shared)
export const sharedWith = (query) => new Set(query.id ? (query.labels || []) : []);
