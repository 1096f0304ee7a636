// HTTP access to the report and control API (same origin). The API key the user typed
// lives in sessionStorage and travels only in the X-API-Key header.

const KEY_STORAGE = "crunch-control.api-key";
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.path = path;
  }

  get isAuth() {
    return this.status === 401 || this.status === 403;
  }
}

export function getKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function setKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage unavailable (privacy mode): the key lasts for this page only.
  }
  window.dispatchEvent(new CustomEvent("crunch:key"));
}

/** Called with a Date after every successful request (the header's "last refresh"). */
export function onSuccess(listener) {
  listeners.add(listener);
}

export function buildUrl(path, params) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params ?? {})) {
    if (value === null || value === undefined || value === "") continue;
    url.searchParams.set(name, Array.isArray(value) ? value.join(",") : String(value));
  }
  return url;
}

async function errorDetail(response) {
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") return body.detail;
    if (body && body.detail) return JSON.stringify(body.detail);
  } catch {
    // not JSON
  }
  return response.statusText || "request failed";
}

/** fetch JSON; throws ApiError (status 0 for network errors) or an AbortError. */
export async function request(path, { method = "GET", params, signal, body } = {}) {
  const url = buildUrl(path, params);
  const headers = { Accept: "application/json" };
  const key = getKey();
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      signal,
      cache: "no-store",
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(0, `network error (${error?.message || "unreachable"})`, url.pathname);
  }
  if (!response.ok) {
    throw new ApiError(response.status, await errorDetail(response), url.pathname);
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      throw new ApiError(response.status, "the response is not JSON", url.pathname);
    }
  }
  const now = new Date();
  for (const listener of listeners) listener(now);
  return data;
}

export const get = (path, params, options = {}) => request(path, { ...options, params });
export const post = (path, options = {}) => request(path, { ...options, method: "POST" });

export function isAbort(error) {
  return Boolean(error) && error.name === "AbortError";
}
