// Calls to the jobhouse API with the signed-in key. The key lives in sessionStorage only (gone
// when the tab closes) and travels in the Authorization header, never in a URL.

const KEY = "jobhouse.key";

export function key() {
  return sessionStorage.getItem(KEY);
}

export function setKey(value) {
  sessionStorage.setItem(KEY, value);
}

export function clearKey() {
  sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error_code;
  }
}

/** Told when the key stops working (401), so the page can ask for another. */
let onRefused = () => {};
export function whenRefused(fn) {
  onRefused = fn;
}

export function headers(extra = {}) {
  return { Authorization: `Bearer ${key()}`, ...extra };
}

export async function call(method, path, body, { signal, keyOverride } = {}) {
  const init = { method, signal, headers: keyOverride ? { Authorization: `Bearer ${keyOverride}` } : headers() };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    if (response.status === 401 && !keyOverride) onRefused();
    throw new ApiError(response.status, data);
  }
  return data;
}

export const get = (path, opts) => call("GET", path, undefined, opts);
export const post = (path, body, opts) => call("POST", path, body, opts);

/** A query string from an object, skipping empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
