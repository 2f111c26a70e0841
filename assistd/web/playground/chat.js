// The chat tab: threads (the ones made or opened in this tab, kept in sessionStorage: the
// API has no list of threads), their messages and runs, and a streamed run per message.

import * as api from "./api.js";
import { $, el, clear, fillSelect, guarded, notice } from "./dom.js";
import { RunPanel, image, merge } from "./steps.js";

const THREADS_ITEM = "assistd.playground.threads";
let running = null; // { controller, threadId, runId } while a run streams

function knownThreads() {
  return JSON.parse(sessionStorage.getItem(THREADS_ITEM) || "[]");
}

function remember(threadId) {
  const threads = knownThreads().filter((id) => id !== threadId);
  threads.unshift(threadId);
  sessionStorage.setItem(THREADS_ITEM, JSON.stringify(threads));
}

export function showThreads(selected) {
  const select = $("#chat-thread");
  const current = selected ?? select.value;
  fillSelect(select, knownThreads(), (id) => [id, id], new Set([current]), [["", "(new thread)"]]);
}

export function showAssistants(assistants) {
  const select = $("#chat-assistant");
  const current = select.value;
  fillSelect(select, assistants, (a) => [a.id, `${a.name || "(no name)"} · ${a.model}`], new Set([current]));
}

export function showFiles(files) {
  fillSelect($("#chat-attach"), files, (f) => [f.id, f.filename], new Set(), [["", "none"]]);
}

async function newThread() {
  const thread = await api.post("threads", {});
  remember(thread.id);
  showThreads(thread.id);
  clear($("#conversation"));
  return thread.id;
}

async function openThread(threadId) {
  await api.get(`threads/${threadId}`); // a clear error for an id of no thread
  remember(threadId);
  showThreads(threadId);
  await loadConversation(threadId);
}

// Messages and runs in order: each run's panel just before the first message it wrote.
async function loadConversation(threadId) {
  const box = clear($("#conversation"));
  if (!threadId) return;
  const [messages, runs] = await Promise.all([
    api.listAll(`threads/${threadId}/messages`, { order: "asc" }),
    api.listAll(`threads/${threadId}/runs`, { order: "asc" }),
  ]);
  const pending = [...runs];
  const place = (run) => {
    const panel = new RunPanel(run);
    box.append(panel.node);
    api.steps(threadId, run.id).then((steps) => panel.showSteps(steps),
      (error) => notice(error.message, "error"));
  };
  for (const message of messages) {
    while (pending.length && (pending[0].created_at < message.created_at || pending[0].id === message.run_id)) {
      place(pending.shift());
    }
    box.append(new MessageView(message).node);
  }
  pending.forEach(place);
}

class MessageView {
  constructor(message) {
    this.node = el("div", { class: `message role-${message.role}` });
    this.show(message);
  }

  show(message) {
    this.message = structuredClone(message);
    this.node.dataset.messageId = message.id;
    this.node.dataset.status = message.status || "";
    clear(this.node).append(el("div", { class: "role" }, message.role));
    const shown = new Set((message.content || []).map((p) => p.image_file?.file_id).filter(Boolean));
    for (const part of message.content || []) this.node.append(contentPart(part, shown));
    const attached = (message.attachments || []).map((a) => a.file_id);
    if (attached.length) this.node.append(el("div", { class: "muted" }, `attached: ${attached.join(", ")}`));
  }

  delta(delta) {
    for (const part of delta.content || []) {
      const { index, ...rest } = part;
      const content = this.message.content;
      content[index] = merge(content[index] || {}, rest);
    }
    this.show(this.message);
  }
}

// A reply's text links each image it shows (`![image](.../links/files/file_...?...)`, for
// clients that drop image parts): here the image itself is shown, so its link is left out.
const IMAGE_LINK = /!\[[^\]]*\]\([^)\s]*\/links\/files\/(file_[A-Za-z0-9]+)[^)\s]*\)/g;

function withoutImageLinks(text, shown) {
  return text.replace(IMAGE_LINK, (link, fileId) => (shown.has(fileId) ? "" : link)).trimEnd();
}

function contentPart(part, shown) {
  if (part.type === "text") {
    return el("div", { class: "text" }, withoutImageLinks(part.text?.value || "", shown));
  }
  if (part.type === "image_file") return image(part.image_file.file_id);
  if (part.type === "image_url") {
    return el("div", { class: "muted" }, `image: ${part.image_url?.url || ""}`);
  }
  return el("pre", { class: "logs" }, JSON.stringify(part, null, 2));
}

// Follows one run's events: its panel, its steps, the messages it writes.
class RunStream {
  constructor(threadId) {
    this.threadId = threadId;
    this.panel = null;
    this.messages = new Map();
  }

  onEvent(name, data) {
    if (name === "error") return notice(data.error?.message || "the stream failed", "error");
    if (data.object === "thread.run") return this.runChanged(data);
    if (data.object === "thread.run.step") return this.panel?.step(data);
    if (data.object === "thread.run.step.delta") return this.panel?.stepDelta(data);
    if (data.object === "thread.message") return this.messageChanged(data);
    if (data.object === "thread.message.delta") return this.messages.get(data.id)?.delta(data.delta);
    return undefined;
  }

  runChanged(run) {
    if (!this.panel) {
      this.panel = new RunPanel(run);
      $("#conversation").append(this.panel.node);
    }
    this.panel.update(run);
    if (running) running.runId = run.id;
    if (run.status === "requires_action") this.askForOutputs(run);
    else clear(this.panel.extra);
  }

  messageChanged(message) {
    const view = this.messages.get(message.id);
    if (view) return view.show(message);
    const made = new MessageView(message);
    this.messages.set(message.id, made);
    $("#conversation").append(made.node);
    return undefined;
  }

  // A run waiting on function calls: a box per call, and a button that sends the outputs
  // and follows the run on.
  askForOutputs(run) {
    const calls = run.required_action?.submit_tool_outputs?.tool_calls || [];
    const inputs = calls.map((call) => el("textarea", { rows: 2, "data-call-id": call.id }));
    const form = el("form", { class: "tool-outputs" },
      el("div", { class: "muted" }, "The run waits for the output of its function calls:"),
      calls.map((call, i) => el("label", {}, `${call.function.name}(${call.function.arguments})`, inputs[i])),
      el("button", { type: "submit" }, "Submit outputs"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const outputs = calls.map((call, i) => ({ tool_call_id: call.id, output: inputs[i].value }));
      clear(this.panel.extra);
      const path = `threads/${this.threadId}/runs/${run.id}/submit_tool_outputs`;
      follow(this, path, { tool_outputs: outputs });
    });
    clear(this.panel.extra).append(form);
  }
}

async function follow(runStream, path, body) {
  const controller = new AbortController();
  running = { controller, threadId: runStream.threadId, runId: runStream.panel?.run.id };
  busy(true);
  try {
    await api.stream(path, body, (name, data) => runStream.onEvent(name, data), controller.signal);
  } catch (error) {
    if (error.name !== "AbortError") notice(error.message, "error");
  } finally {
    running = null;
    busy(false);
  }
  if (runStream.panel) await guarded(() => reread(runStream));
}

// The run and its steps as stored, once its stream is over: what the panel shows is then
// right even if the stream was cut short.
async function reread(runStream) {
  const panel = runStream.panel;
  const [run, steps] = await Promise.all([
    api.get(`threads/${runStream.threadId}/runs/${panel.run.id}`),
    api.steps(runStream.threadId, panel.run.id),
  ]);
  panel.update(run);
  panel.showSteps(steps);
}

function busy(on) {
  $("#send").disabled = on;
  $("#cancel-run").hidden = !on;
}

async function send() {
  const text = $("#chat-input").value.trim();
  const assistantId = $("#chat-assistant").value;
  if (!text) return notice("Write a message first.", "error");
  if (!assistantId) return notice("Create or choose an assistant first.", "error");
  const threadId = $("#chat-thread").value || (await newThread());
  const message = { role: "user", content: text };
  const fileId = $("#chat-attach").value;
  if (fileId) message.attachments = [{ file_id: fileId, tools: attachTools(assistantId) }];
  const created = await api.post(`threads/${threadId}/messages`, message);
  $("#chat-input").value = "";
  $("#conversation").append(new MessageView(created).node);
  await follow(new RunStream(threadId), `threads/${threadId}/runs`, { assistant_id: assistantId });
  return undefined;
}

let assistantTools = new Map(); // assistant id -> its tool types

export function knowTools(assistants) {
  assistantTools = new Map(assistants.map((a) => [a.id, a.tools.map((t) => t.type)]));
}

function attachTools(assistantId) {
  const types = (assistantTools.get(assistantId) || []).filter((t) => t === "code_interpreter" || t === "file_search");
  return (types.length ? types : ["code_interpreter"]).map((type) => ({ type }));
}

async function cancel() {
  if (!running?.runId) return;
  const { threadId, runId } = running;
  await api.post(`threads/${threadId}/runs/${runId}/cancel`, {});
}

export function setUpChat() {
  showThreads("");
  $("#new-thread").addEventListener("click", () => guarded(newThread));
  $("#chat-thread").addEventListener("change", (e) => guarded(() => loadConversation(e.target.value)));
  $("#open-thread").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("#open-thread-id").value.trim();
    if (id) guarded(() => openThread(id));
  });
  $("#chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(send);
  });
  $("#chat-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("#chat-form").requestSubmit();
  });
  $("#cancel-run").addEventListener("click", () => guarded(cancel));
}

export function forgetThreads() {
  sessionStorage.removeItem(THREADS_ITEM);
  showThreads("");
  clear($("#conversation"));
}
