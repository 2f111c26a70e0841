// The playground's only way to the server: assistd's public OpenAI-surface API (/v1),
// with the key the user entered, sent as a Bearer header. The key lives in this tab's
// sessionStorage (gone when the tab closes) and never in a cookie.

const KEY_ITEM = "assistd.playground.key";
// Relative to the page (/ui), so a proxy path in front of assistd is kept.
const BASE = new URL("v1/", document.baseURI);
// file_search results with their text, in a run's steps.
const RESULT_CONTENT = "step_details.tool_calls[*].file_search.results[*].content";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function savedKey() {
  return sessionStorage.getItem(KEY_ITEM) || "";
}

export function saveKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
  images.forget();
}

function url(path, query = {}) {
  const target = new URL(path.replace(/^\//, ""), BASE);
  for (const [name, value] of Object.entries(query)) {
    for (const one of [value].flat()) {
      if (one !== undefined && one !== null) target.searchParams.append(name, one);
    }
  }
  return target;
}

async function send(method, path, { body, query, stream } = {}) {
  const headers = { Authorization: `Bearer ${savedKey()}` };
  if (body !== undefined && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(body);
  }
  if (stream) headers.Accept = "text/event-stream";
  const response = await fetch(url(path, query), {
    method, headers, body, credentials: "omit", cache: "no-store",
  });
  if (!response.ok) throw await failure(response);
  return response;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const data = await response.json();
    message = data.error?.message || data.message || message;
  } catch {
    // not JSON: the status line says enough
  }
  if (response.status === 401) message = `The server refused the key: ${message}`;
  return new ApiError(response.status, message);
}

export async function call(method, path, options = {}) {
  const response = await send(method, path, options);
  return response.json();
}

export const get = (path, query) => call("GET", path, { query });
export const post = (path, body) => call("POST", path, { body });
export const del = (path) => call("DELETE", path);

// Every page of a list (`has_more`/`last_id`), up to `limit` items.
export async function listAll(path, query = {}, limit = 500) {
  const items = [];
  let after;
  for (;;) {
    const page = await get(path, { limit: 100, ...query, after });
    items.push(...page.data);
    if (!page.has_more || !page.data.length || items.length >= limit) return items;
    after = page.last_id;
  }
}

export function steps(threadId, runId) {
  const path = `threads/${threadId}/runs/${runId}/steps`;
  return listAll(path, { order: "asc", "include[]": RESULT_CONTENT });
}

// POSTs with stream=true and hands each server-sent event to `onEvent(name, data)` until
// the stream ends (`event: done`, or the connection closes).
export async function stream(path, body, onEvent, signal) {
  const headers = {
    Authorization: `Bearer ${savedKey()}`,
    "Content-Type": "application/json",
    Accept: "text/event-stream",
  };
  const query = { "include[]": RESULT_CONTENT };
  const response = await fetch(url(path, query), {
    method: "POST", headers, body: JSON.stringify({ ...body, stream: true }),
    credentials: "omit", cache: "no-store", signal,
  });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser(onEvent);
  for (;;) {
    const { value, done } = await reader.read();
    if (done || parser.feed(value)) break;
  }
  reader.cancel().catch(() => {});
}

// Server-sent events: `event:`, `data:` (lines joined), comments (`: keep-alive`) skipped.
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
  }

  // Takes the next piece of text; true once the stream said `done`.
  feed(text) {
    this.buffer += text;
    const blocks = this.buffer.split(/\r?\n\r?\n/);
    this.buffer = blocks.pop();
    for (const block of blocks) {
      if (this.dispatch(block)) return true;
    }
    return false;
  }

  dispatch(block) {
    let name = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return false;
    if (name === "done") return true;
    this.onEvent(name, JSON.parse(data.join("\n")));
    return false;
  }
}

export async function upload(file, purpose) {
  const form = new FormData();
  form.append("purpose", purpose);
  form.append("file", file, file.name);
  return call("POST", "files", { body: form });
}

// A file's bytes as an object URL (fetched with the key, so an <img> or a download link
// needs none); kept per file id until the key changes.
class ImageCache {
  constructor() {
    this.urls = new Map(); // file id -> a promise of its object URL
    this.ready = new Map(); // file id -> its object URL, once fetched
  }

  url(fileId) {
    if (!this.urls.has(fileId)) {
      const made = send("GET", `files/${fileId}/content`)
        .then((response) => response.blob())
        .then((blob) => {
          const objectUrl = URL.createObjectURL(blob);
          this.ready.set(fileId, objectUrl);
          return objectUrl;
        });
      made.catch(() => this.urls.delete(fileId));
      this.urls.set(fileId, made);
    }
    return this.urls.get(fileId);
  }

  // The object URL if the file is fetched already (an image drawn again shows at once).
  loaded(fileId) {
    return this.ready.get(fileId);
  }

  forget() {
    for (const made of this.urls.values()) made.then(URL.revokeObjectURL, () => {});
    this.urls.clear();
    this.ready.clear();
  }
}

export const images = new ImageCache();
