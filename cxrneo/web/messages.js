// One-line errors on the page, and the token dialog (a 401 asks for the token again).

import { ApiError } from "./api.js";
import { $ } from "./dom.js";

export function showError(message) {
  const line = String(message).split("\n")[0];
  $("error").textContent = line;
  $("error").hidden = !line;
}

export function askToken(message) {
  $("token-error").textContent = message || "";
  $("token-error").hidden = !message;
  $("token").value = "";
  if (!$("token-dialog").open) $("token-dialog").showModal();
  $("token").focus();
}

export function fail(e) {
  if (e instanceof ApiError && e.status === 401) { askToken(e.message); return; }
  showError(e instanceof Error ? e.message : String(e));
}
