// cxrneo viewer: query by an image file or an archived id, show the hits with their findings, look closer,
// draw the neighbourhood. Talks only to this service's JSON/PNG routes; nothing is loaded from elsewhere.
// This module starts the page (what the service offers: /config, /health) and wires the form's events;
// the rest lives in api.js, state.js, url.js, messages.js, findings.js, filters.js, form.js, freshness.js,
// examples.js, marking.js, panel.js, likeness.js, results.js, keep.js, detail.js, neighbourhood.js and search.js.

import { ApiError, json, setToken, token } from "./api.js";
import { wireDetail } from "./detail.js";
import { $ } from "./dom.js";
import { setUpNarrowing, wireFilters } from "./filters.js";
import { setUpKeep, wireKeep } from "./keep.js";
import { askToken, fail, showError } from "./messages.js";
import { wireNeighbourhood } from "./neighbourhood.js";
import { applySettings } from "./form.js";
import { wireFreshness } from "./freshness.js";
import { wireMarking } from "./marking.js";
import { wireResults } from "./results.js";
import { chosenFile, moreLikeThese, openAddress, search } from "./search.js";
import * as state from "./state.js";
import { onAddressChange, settingsFromUrl } from "./url.js";

async function start() {
  showError("");
  let config;
  try {
    config = await json("config");
  } catch (e) {
    $("status").textContent = "not connected";
    if (e instanceof ApiError && e.status === 401) {
      askToken(token() ? "The key was not accepted (HTTP 401): it may be revoked or mistyped (ask for a key made by cxrneo users add)." : "");
    } else {
      fail(e);
    }
    return;
  }
  state.setConfig(config);
  $("token-button").hidden = !token();
  $("method").replaceChildren(...config.methods.map((m) => new Option(m, m)));
  $("k").max = Math.min(100, config.max_k);
  const files = config.image_queries;
  $("file").disabled = !files;
  $("file-note").textContent = files ? "PNG, JPEG or DICOM" : "image files need `cxrneo serve --checkpoint`";
  $("browser-link").hidden = !config.browser;
  setUpNarrowing(config);
  setUpKeep(config);
  await refreshHealth();
  const wanted = settingsFromUrl(); // a link or bookmark of a search: run it
  if (wanted && (wanted.id || wanted.examples.length)) await openAddress(wanted);
  else if (wanted) applySettings(wanted);
}

async function refreshHealth() {
  try {
    const h = await json("health");
    state.setHealth(h);
    $("status").textContent = h.status === "ok" ? `${h.images} archived images`
      : "the archive is not ready - try again in a minute";
    $("status-advanced").textContent = h.status === "ok"
      ? `${h.edges} similarity edges · threshold T = ${Number(h.threshold).toFixed(4)} · generation ${h.generation}`
      : `graph ${h.status}${h.error ? ": " + h.error : ""}`;
  } catch (e) {
    $("status").textContent = "health unknown";
  }
}

function wireForm() {
  $("token-form").addEventListener("submit", () => { setToken($("token").value); start(); });
  $("token-button").addEventListener("click", () => askToken(""));
  $("query-form").addEventListener("submit", (e) => { e.preventDefault(); search(); });
  $("file").addEventListener("change", () => { if (chosenFile()) { $("image-id").value = ""; search(); } });
  $("image-id").addEventListener("input", () => { if ($("image-id").value) $("file").value = ""; });
  $("more-like").addEventListener("click", moreLikeThese);
  const drop = $("drop");
  for (const kind of ["dragenter", "dragover"]) {
    drop.addEventListener(kind, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const kind of ["dragleave", "drop"]) drop.addEventListener(kind, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (!e.dataTransfer.files.length) return;
    if ($("file").disabled) { showError("image files need `cxrneo serve --checkpoint`"); return; }
    $("file").files = e.dataTransfer.files;
    $("image-id").value = "";
    search();
  });
}

wireForm();
wireFilters();
wireDetail();
wireNeighbourhood();
wireFreshness();
wireMarking();
wireResults();
wireKeep();
onAddressChange(openAddress);
start();
