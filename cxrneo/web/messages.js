// Errors on the page in plain words (one line), with the service's own line and status under "Technical
// detail"; and the token dialog (a 401 asks for the token again).

import { ApiError } from "./api.js";
import { $ } from "./dom.js";

export function showError(message, detail = "") {
  const line = String(message).split("\n")[0];
  $("error-text").textContent = line;
  $("error-detail").textContent = detail;
  $("error-more").hidden = !detail;
  $("error").hidden = !line;
}

export function askToken(message) {
  $("token-error").textContent = message || "";
  $("token-error").hidden = !message;
  $("token").value = "";
  if (!$("token-dialog").open) $("token-dialog").showModal();
  $("token").focus();
}

// the name the service's line quotes ("no image 'x.png' in the database" -> x.png)
const quoted = (text) => (/'([^']+)'/.exec(text) || [])[1];

// what a refusal means for the reader; `upload`: the request sent a file
export function plainWords(e, upload = false) {
  const said = e.detail || "";
  switch (e.status) {
    case 0: return "The search service cannot be reached - check the network, or ask IT whether cxrneo is running.";
    case 400: return `${upload ? "This file was not accepted" : "The search was not accepted"}: ${said}`;
    case 403: return "Your key does not allow this - ask your administrator.";
    case 404: return quoted(said) ? `${quoted(said)} is not in the archive.` : "An image asked for is not in the archive.";
    case 413: return "The file is too large to send.";
    case 422: return upload ? "This file could not be read as an X-ray (PNG, JPEG or DICOM are accepted)."
      : "A setting was not accepted - check K and the filters.";
    case 429: return "Too many requests just now - wait a moment and try again.";
    case 503: return "The archive is busy or not ready - try again in a minute.";
    default: return "Something went wrong on the server - try again, or tell IT.";
  }
}

export function fail(e, upload = false) {
  if (e instanceof ApiError && e.status === 401) { askToken(e.message); return; }
  if (e instanceof ApiError) showError(plainWords(e, upload), e.message);
  else showError(e instanceof Error ? e.message : String(e));
}
