// A run's panel: its status and its steps, each tool call with what it was given and what
// it gave back (code and its output, images, file_search results, a function's output).
// Built from the stream's events while a run goes, and from /steps for past runs.

import { images } from "./api.js";
import { el, clear } from "./dom.js";

export class RunPanel {
  constructor(run) {
    this.steps = new Map(); // step id -> { data, node }
    this.status = el("span", { class: "run-status" });
    this.error = el("div", { class: "run-error", hidden: true });
    this.list = el("ol", { class: "steps" });
    this.extra = el("div", { class: "run-extra" });
    this.title = el("span", { class: "run-id" });
    this.node = el("details", { class: "run", open: true },
      el("summary", {}, "Run ", this.title, " ", this.status),
      this.error, this.list, this.extra);
    this.update(run);
  }

  update(run) {
    this.run = run;
    this.node.dataset.runId = run.id;
    this.node.dataset.status = run.status;
    this.title.textContent = run.id;
    this.status.textContent = run.status;
    this.status.className = `run-status status-${run.status}`;
    const error = run.last_error;
    this.error.hidden = !error;
    this.error.textContent = error ? `${error.code}: ${error.message}` : "";
  }

  showSteps(steps) {
    for (const step of steps) this.step(step);
  }

  // A whole step (step.created, step.completed, or from the list): shown as it is.
  step(data) {
    let entry = this.steps.get(data.id);
    if (!entry) {
      entry = { node: el("li", { class: "step" }) };
      this.steps.set(data.id, entry);
      this.list.append(entry.node);
    }
    if (entry.data && JSON.stringify(entry.data) === JSON.stringify(data)) return; // as shown
    entry.data = structuredClone(data);
    renderStep(entry.node, entry.data);
  }

  // thread.run.step.delta: the pieces added to a step's tool calls.
  stepDelta(delta) {
    const entry = this.steps.get(delta.id);
    const calls = delta.delta?.step_details?.tool_calls;
    if (!entry || !calls) return;
    const details = entry.data.step_details;
    if (details.type !== "tool_calls") entry.data.step_details = { type: "tool_calls", tool_calls: [] };
    const known = entry.data.step_details.tool_calls;
    for (const piece of calls) {
      const { index, ...rest } = piece;
      known[index] = merge(known[index] || {}, rest);
    }
    renderStep(entry.node, entry.data);
  }
}

// Adds a delta into what is known so far: strings are appended, lists of indexed items
// merged item by item (as the vendor's SDK does), anything else replaced.
export function merge(into, delta) {
  for (const [key, value] of Object.entries(delta)) {
    const had = into[key];
    if (typeof value === "string" && typeof had === "string" && key !== "type" && key !== "id") {
      into[key] = had + value;
    } else if (Array.isArray(value) && Array.isArray(had)) {
      for (const item of value) {
        const { index, ...rest } = item;
        const at = index ?? had.length;
        had[at] = typeof had[at] === "object" ? merge(had[at], rest) : rest;
      }
    } else if (value && typeof value === "object" && had && typeof had === "object") {
      merge(had, value);
    } else {
      into[key] = structuredClone(value);
    }
  }
  return into;
}

function renderStep(node, step) {
  node.dataset.stepId = step.id;
  node.dataset.type = step.type;
  const head = el("div", { class: "step-head" },
    el("strong", {}, step.type === "tool_calls" ? "Tool calls" : "Message"), " ",
    el("span", { class: `status-${step.status}` }, step.status));
  const details = step.step_details || {};
  const body = details.type === "tool_calls"
    ? (details.tool_calls || []).filter(Boolean).map(toolCall)
    : [el("div", { class: "muted" }, details.message_creation?.message_id || "")];
  const error = step.last_error
    ? el("div", { class: "run-error" }, `${step.last_error.code}: ${step.last_error.message}`)
    : null;
  clear(node).append(head, ...body);
  if (error) node.append(error);
}

function toolCall(call) {
  const box = el("div", { class: `tool-call tool-${call.type}` },
    el("div", { class: "tool-name" }, call.type === "function" ? `function ${call.function?.name || ""}` : call.type));
  const body = call[call.type] || {};
  if (call.type === "code_interpreter") box.append(...codeCall(body));
  else if (call.type === "file_search") box.append(...fileSearch(body));
  else if (call.type === "function") box.append(...functionCall(body));
  else box.append(...generic(body));
  return box;
}

function codeCall(body) {
  const parts = [el("pre", { class: "code" }, body.input || "")];
  for (const output of (body.outputs || []).filter(Boolean)) {
    if (output.type === "logs") parts.push(el("pre", { class: "logs" }, output.logs || ""));
    if (output.type === "image" && output.image?.file_id) parts.push(image(output.image.file_id));
  }
  return parts;
}

function fileSearch(body) {
  const results = body.results || [];
  if (!results.length) return [el("div", { class: "muted" }, "no results (yet)")];
  return [el("ol", { class: "results" }, results.map((r) => el("li", {},
    el("strong", {}, r.file_name || r.file_id), ` score ${Number(r.score ?? 0).toFixed(3)}`,
    ...(r.content || []).map((c) => el("pre", { class: "logs" }, c.text || "")))))];
}

function functionCall(body) {
  return [
    el("pre", { class: "code" }, body.arguments || ""),
    body.output !== null && body.output !== undefined
      ? el("pre", { class: "logs" }, body.output) : el("div", { class: "muted" }, "no output yet"),
  ];
}

function generic(body) {
  const shown = [];
  if (body.input !== undefined) shown.push(el("pre", { class: "code" }, text(body.input)));
  if (body.output !== undefined && body.output !== null) {
    shown.push(el("pre", { class: "logs" }, text(body.output)));
  }
  return shown;
}

function text(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

// An image file shown inline: its bytes fetched with the key, shown from an object URL.
export function image(fileId) {
  const img = el("img", {
    class: "file-image", alt: `image ${fileId}`, "data-file-id": fileId, src: images.loaded(fileId),
  });
  if (img.src) return img;
  images.url(fileId).then((src) => (img.src = src),
    (error) => img.replaceWith(el("div", { class: "run-error" }, `image ${fileId}: ${error.message}`)));
  return img;
}
