// The assistants tab: list, create, edit, delete (model, instructions, tools and their
// files). Tools other than the three this form edits are kept as they were.

import * as api from "./api.js";
import { $, el, clear, fillSelect, guarded, notice, selectedValues } from "./dom.js";

const EDITED = new Set(["code_interpreter", "file_search", "function"]);
let editing = null; // the assistant being edited, or null for a new one
let onChange = () => {};
let catalog = { files: [], stores: [] };

export async function loadAssistants() {
  const assistants = await api.listAll("assistants", { order: "desc" });
  const body = clear($("#assistant-list tbody"));
  for (const a of assistants) {
    body.append(el("tr", { "data-assistant-id": a.id },
      el("td", {}, a.name || "(no name)"),
      el("td", {}, a.model),
      el("td", {}, a.tools.map((t) => (t.type === "function" ? `function ${t.function?.name}` : t.type)).join(", ")),
      el("td", { class: "id" }, a.id),
      el("td", {},
        el("button", { type: "button", onclick: () => edit(a) }, "Edit"),
        el("button", { type: "button", class: "danger", onclick: () => guarded(() => remove(a)) }, "Delete"))));
  }
  onChange(assistants);
  return assistants;
}

// Refills only the two lists: the catalog can arrive while someone is typing in the form
// (it loads after the key is accepted), and what they typed and chose must stay.
export function showCatalog(files, stores) {
  catalog = { files, stores };
  fillLists(new Set(selectedValues($("#a-files"))), new Set(selectedValues($("#a-stores"))));
}

function fillLists(fileIds, storeIds) {
  fillSelect($("#a-files"), catalog.files, (f) => [f.id, `${f.filename} (${f.id})`], fileIds);
  fillSelect($("#a-stores"), catalog.stores, (s) => [s.id, `${s.name || "(no name)"} (${s.id})`], storeIds);
}

function edit(assistant) {
  editing = assistant;
  fillForm(assistant);
  $("#a-name").focus();
}

function fillForm(a) {
  $("#assistant-form-title").textContent = a ? `Edit ${a.name || a.id}` : "New assistant";
  $("#a-name").value = a?.name || "";
  $("#a-model").value = a?.model || "";
  $("#a-instructions").value = a?.instructions || "";
  const types = new Set((a?.tools || []).map((t) => t.type));
  $("#a-code").checked = types.has("code_interpreter");
  $("#a-search").checked = types.has("file_search");
  const functions = (a?.tools || []).filter((t) => t.type === "function").map((t) => t.function);
  $("#a-functions").value = functions.length ? JSON.stringify(functions, null, 2) : "";
  const resources = a?.tool_resources || {};
  fillLists(
    new Set(resources.code_interpreter?.file_ids || []),
    new Set(resources.file_search?.vector_store_ids || []),
  );
}

function functionTools() {
  const text = $("#a-functions").value.trim();
  if (!text) return [];
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`Functions: not JSON (${error.message}).`);
  }
  if (!Array.isArray(parsed)) throw new Error("Functions: a JSON list of function definitions is expected.");
  return parsed.map((fn) => ({ type: "function", function: fn }));
}

function formBody() {
  const kept = (editing?.tools || []).filter((t) => !EDITED.has(t.type));
  const tools = [
    ...($("#a-code").checked ? [{ type: "code_interpreter" }] : []),
    ...($("#a-search").checked ? [{ type: "file_search" }] : []),
    ...functionTools(),
    ...kept,
  ];
  return {
    name: $("#a-name").value.trim() || null,
    model: $("#a-model").value.trim(),
    instructions: $("#a-instructions").value || null,
    tools,
    tool_resources: {
      code_interpreter: { file_ids: selectedValues($("#a-files")) },
      file_search: { vector_store_ids: selectedValues($("#a-stores")) },
    },
  };
}

async function save() {
  const body = formBody();
  if (!body.model) throw new Error("Model is required.");
  const saved = editing
    ? await api.post(`assistants/${editing.id}`, body)
    : await api.post("assistants", body);
  notice(`Saved ${saved.name || saved.id}.`);
  editing = null;
  fillForm(null);
  await loadAssistants();
}

async function remove(assistant) {
  if (!window.confirm(`Delete the assistant ${assistant.name || assistant.id}?`)) return;
  await api.del(`assistants/${assistant.id}`);
  if (editing?.id === assistant.id) {
    editing = null;
    fillForm(null);
  }
  notice(`Deleted ${assistant.name || assistant.id}.`);
  await loadAssistants();
}

export function setUpAssistants(changed) {
  onChange = changed;
  fillForm(null);
  $("#assistant-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(save);
  });
  const reset = () => {
    editing = null;
    fillForm(null);
  };
  $("#new-assistant").addEventListener("click", reset);
  $("#cancel-assistant").addEventListener("click", reset);
}
