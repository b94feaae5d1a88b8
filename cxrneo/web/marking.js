// Refine by region: a box marked on the query film in the query panel (drag with a mouse, a finger or a pen;
// or "Mark a region", then the keyboard). The box is [x0, y0, x1, y1] in fractions of the film's width and
// height, as the service's `region`; it is kept in state.js with the film it was marked on, and the next
// Search sends it. Also the box's outline over a film shown elsewhere (the closer look).

import { $ } from "./dom.js";
import { markStale } from "./freshness.js";
import * as state from "./state.js";

export const REGION_WORDS = "Region query: the marked part of the film";
const STEP = 0.02; // a keyboard step, as a fraction of the film
const SMALLEST = 0.04; // the narrowest box side one can draw or shrink to
const CENTRED = [0.3, 0.3, 0.7, 0.7];

const round = (v) => Math.round(v * 1000) / 1000;
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

// the film shown (as fitted by object-fit: contain) inside its <img>: offsets within the img's offset parent
function picture(img) {
  const w = img.offsetWidth, h = img.offsetHeight, nw = img.naturalWidth, nh = img.naturalHeight;
  if (!w || !h || !nw || !nh) return null;
  const scale = Math.min(w / nw, h / nh);
  const width = nw * scale, height = nh * scale;
  return { left: img.offsetLeft + (w - width) / 2, top: img.offsetTop + (h - height) / 2, width, height };
}

// an outline element placed over `img` at `box` (hidden when there is no box or no picture yet)
export function place(outline, img, box) {
  const p = box && picture(img);
  outline.hidden = !p;
  if (!p) return;
  const [x0, y0, x1, y1] = box;
  outline.style.left = `${p.left + x0 * p.width}px`;
  outline.style.top = `${p.top + y0 * p.height}px`;
  outline.style.width = `${(x1 - x0) * p.width}px`;
  outline.style.height = `${(y1 - y0) * p.height}px`;
}

// which film a search is of: an archived id, or a file by name (an upload shown as its archived twin counts as the file)
export const filmOf = (query) => (query.file ? `file:${query.file.name}` : query.upload ? `file:${query.upload}` : `id:${query.id}`);

function percent(box) {
  const [x0, y0, x1, y1] = box.map((v) => Math.round(v * 100));
  return `Marked: ${x0}–${x1}% across (from the film's left edge as shown), ${y0}–${y1}% down`;
}

// the panel's box, its words and its buttons, from the state
export function showMark() {
  const box = state.region();
  $("region-tools").hidden = !state.offers("regions");
  place($("region-box"), $("query-img"), box);
  $("region-words").textContent = box ? percent(box) : "";
  $("clear-region").hidden = !box;
  $("mark-region").textContent = box ? "Centre the box" : "Mark a region";
  const answer = state.answer();
  $("region-query").hidden = !(answer && answer.region);
}

function setBox(box, why) {
  const film = state.query() ? filmOf(state.query()) : "";
  state.setRegion(box && box.map(round), film);
  showMark();
  markStale(why);
}

export function clearRegion() {
  if (!state.region()) return;
  setBox(null, "Region cleared - press Search to update");
  $("mark-region").focus();
}

// --- the pointer: press, drag, release --------------------------------------------------------------

function fractionAt(img, e) {
  const p = picture(img);
  const r = img.getBoundingClientRect();
  const left = r.left + p.left - img.offsetLeft, top = r.top + p.top - img.offsetTop;
  return [clamp((e.clientX - left) / p.width, 0, 1), clamp((e.clientY - top) / p.height, 0, 1)];
}

function wirePointer() {
  const img = $("query-img"), frame = $("query-frame");
  let start = null, before = null;
  frame.addEventListener("pointerdown", (e) => {
    if (!state.offers("regions") || !picture(img) || e.button !== 0) return;
    e.preventDefault();
    frame.setPointerCapture(e.pointerId);
    start = fractionAt(img, e);
    before = state.region();
  });
  frame.addEventListener("pointermove", (e) => {
    if (!start) return;
    const [x, y] = fractionAt(img, e);
    place($("region-box"), img, [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)]);
  });
  const finish = (e, cancelled) => {
    if (!start) return;
    const [x, y] = fractionAt(img, e);
    const box = [Math.min(start[0], x), Math.min(start[1], y), Math.max(start[0], x), Math.max(start[1], y)];
    start = null;
    if (cancelled || box[2] - box[0] < SMALLEST || box[3] - box[1] < SMALLEST) { // a click or a slip: nothing drawn
      place($("region-box"), img, before);
      return;
    }
    setBox(box, "Region changed - press Search to update");
  };
  frame.addEventListener("pointerup", (e) => finish(e, false));
  frame.addEventListener("pointercancel", (e) => finish(e, true));
  img.draggable = false;
}

// --- the keyboard: arrows move, Shift+arrows resize, Enter searches, Escape clears ---------------------

function moved(box, key, resize) {
  let [x0, y0, x1, y1] = box;
  const dx = { ArrowLeft: -STEP, ArrowRight: STEP }[key] || 0, dy = { ArrowUp: -STEP, ArrowDown: STEP }[key] || 0;
  if (resize) { // the right and bottom edges move: wider/narrower, taller/shorter
    x1 = clamp(x1 + dx, x0 + SMALLEST, 1);
    y1 = clamp(y1 + dy, y0 + SMALLEST, 1);
  } else {
    const mx = clamp(dx, -x0, 1 - x1), my = clamp(dy, -y0, 1 - y1);
    [x0, x1, y0, y1] = [x0 + mx, x1 + mx, y0 + my, y1 + my];
  }
  return [x0, y0, x1, y1];
}

function wireKeys() {
  const box = $("region-box");
  box.addEventListener("keydown", (e) => {
    const region = state.region();
    if (!region) return;
    if (e.key.startsWith("Arrow")) {
      e.preventDefault();
      setBox(moved(region, e.key, e.shiftKey), "Region changed - press Search to update");
    } else if (e.key === "Enter") {
      e.preventDefault();
      $("query-form").requestSubmit();
    } else if (e.key === "Escape") {
      e.preventDefault();
      clearRegion();
    }
  });
  $("mark-region").addEventListener("click", () => {
    setBox(CENTRED, "Region changed - press Search to update");
    box.focus();
  });
  $("clear-region").addEventListener("click", clearRegion);
}

// once at start-up
export function wireMarking() {
  wirePointer();
  wireKeys();
  $("query-img").addEventListener("load", showMark);
  new ResizeObserver(showMark).observe($("query-img"));
}
