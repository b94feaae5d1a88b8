// The page's address, owned here: a search's settings in the query string, so a link or a bookmark opens the
// same search and Back returns to the previous one. An uploaded file cannot travel in an address: after an
// upload the address holds only the settings.
//   ?id=…&method=…&k=…&exclude_patient=0|1&example=…(repeated)&filter={json}&concept=Finding&step=0.5
//   &region=x0,y0,x1,y1 (a box marked on the film, fractions of its width and height)

// a region from the address: four fractions 0 <= x0 < x1 <= 1, 0 <= y0 < y1 <= 1 (null otherwise)
function regionOf(text) {
  const v = (text || "").split(",").map((t) => (t.trim() === "" ? NaN : Number(t)));
  const ok = v.length === 4 && v.every(Number.isFinite) && v[0] >= 0 && v[1] >= 0 && v[0] < v[2] && v[1] < v[3]
    && v[2] <= 1 && v[3] <= 1;
  return ok ? v : null;
}

// the settings the address asks for (null: it names no search)
export function settingsFromUrl() {
  const p = new URLSearchParams(location.search);
  if (![...p.keys()].length) return null;
  let filter = null;
  try { filter = p.get("filter") ? JSON.parse(p.get("filter")) : null; } catch (e) { filter = null; }
  const step = Number(p.get("step"));
  return {
    id: p.get("id") || "",
    method: p.get("method") || "",
    k: p.get("k") ? Number(p.get("k")) : null,
    exclude_patient: p.get("exclude_patient") !== "0",
    examples: p.getAll("example").filter(Boolean),
    filter: filter && typeof filter === "object" && !Array.isArray(filter) ? filter : null,
    concepts: p.get("concept") && Number.isFinite(step) && step !== 0 ? { [p.get("concept")]: step } : null,
    region: regionOf(p.get("region")),
  };
}

function addressOf(s) {
  const p = new URLSearchParams();
  if (s.id) p.set("id", s.id);
  p.set("method", s.method);
  p.set("k", String(s.k));
  p.set("exclude_patient", s.exclude_patient ? "1" : "0");
  for (const e of s.examples || []) p.append("example", e);
  if (s.filter) p.set("filter", JSON.stringify(s.filter));
  const [concept, step] = Object.entries(s.concepts || {})[0] || [];
  if (concept) { p.set("concept", concept); p.set("step", String(step)); }
  if (s.region) p.set("region", s.region.join(","));
  return `${location.pathname}?${p}`;
}

// after a search: a new entry in the history (Back returns to the search before), unless the address is
// already this search's (a search opened from the address, or from Back)
export function recordSearch(settings) {
  const address = addressOf(settings);
  if (address === location.pathname + location.search) return;
  history.pushState(null, "", address);
}

// Back and Forward: `run` gets the settings of the address returned to
export function onAddressChange(run) {
  window.addEventListener("popstate", () => { const s = settingsFromUrl(); if (s) run(s); });
}
