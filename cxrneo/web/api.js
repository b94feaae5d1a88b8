// Talking to the service: the access token (kept in this tab), fetch wrappers that turn a refusal into one
// ApiError line, and the blob URLs of fetched images (released together when a new answer is shown).

const TOKEN_KEY = "cxrneo-token";

export class ApiError extends Error {
  // message: the service's line with the status (technical detail); detail: the service's line alone
  constructor(status, message, detail = message) { super(message); this.status = status; this.detail = detail; }
}

export const token = () => sessionStorage.getItem(TOKEN_KEY) || "";
export const setToken = (value) => sessionStorage.setItem(TOKEN_KEY, value.trim());

export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", "Bearer " + token());
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (e) {
    throw new ApiError(0, "the cxrneo service cannot be reached (is `cxrneo serve` running?)");
  }
  if (!response.ok) {
    let message = response.statusText || "request failed";
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON: keep the status text */ }
    throw new ApiError(response.status, `${message} (HTTP ${response.status})`, message);
  }
  return response;
}

export const json = async (path, options) => (await api(path, options)).json();
export const post = (path, body) => json(path, { method: "POST", headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body) });

const urls = []; // the blob URLs of the images on show

export async function blobUrl(path, options) {
  const url = URL.createObjectURL(await (await api(path, options)).blob());
  urls.push(url);
  return url;
}

export function releaseImages() { urls.splice(0).forEach((u) => URL.revokeObjectURL(u)); }

// the query's own pixels: an archived image by id, a new file rendered by the service as the model reads it
export async function queryImageUrl(query, size) {
  if (query.id) return blobUrl(`images/${encodeURIComponent(query.id)}/pixels?size=${size}`);
  const form = new FormData();
  form.append("file", query.file);
  return blobUrl(`images/render?size=${size}`, { method: "POST", body: form });
}
