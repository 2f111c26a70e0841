// The files and vector stores tabs: upload, download, delete files; create vector stores,
// add and remove their files, delete them.

import * as api from "./api.js";
import { $, el, clear, fillSelect, guarded, notice, selectedValues } from "./dom.js";

let onChange = () => {};
let files = [];
let stores = [];

export async function loadFiles() {
  files = await api.listAll("files", { order: "desc" });
  const body = clear($("#file-list tbody"));
  for (const f of files) {
    body.append(el("tr", { "data-file-id": f.id },
      el("td", {}, f.filename), el("td", {}, f.bytes), el("td", {}, f.purpose),
      el("td", { class: "id" }, f.id),
      el("td", {},
        el("button", { type: "button", onclick: () => guarded(() => download(f)) }, "Download"),
        el("button", { type: "button", class: "danger", onclick: () => guarded(() => removeFile(f)) }, "Delete"))));
  }
  fillSelect($("#store-files"), files, (f) => [f.id, f.filename]);
  onChange(files, stores);
}

export async function loadStores() {
  stores = await api.listAll("vector_stores", { order: "desc" });
  const body = clear($("#store-list tbody"));
  for (const s of stores) {
    const counts = s.file_counts || {};
    body.append(el("tr", { "data-store-id": s.id },
      el("td", {}, s.name || "(no name)"), el("td", {}, s.status),
      el("td", {}, `${counts.completed ?? 0} of ${counts.total ?? 0} ready`),
      el("td", { class: "id" }, s.id),
      el("td", {},
        el("button", { type: "button", onclick: () => guarded(() => showStore(s)) }, "Files"),
        el("button", { type: "button", class: "danger", onclick: () => guarded(() => removeStore(s)) }, "Delete"))));
  }
  onChange(files, stores);
  pollWhileIngesting();
}

let poll = null;

// A store still ingesting is listed again every 2 s, until all its files are done.
function pollWhileIngesting() {
  clearTimeout(poll);
  if (!stores.some((s) => s.status === "in_progress")) return;
  poll = setTimeout(() => api.savedKey() && guarded(loadStores), 2000);
}

async function download(file) {
  const url = await api.images.url(file.id);
  const link = el("a", { href: url, download: file.filename });
  document.body.append(link);
  link.click();
  link.remove();
}

async function removeFile(file) {
  if (!window.confirm(`Delete the file ${file.filename}?`)) return;
  await api.del(`files/${file.id}`);
  notice(`Deleted ${file.filename}.`);
  await loadFiles();
}

async function uploadSelected() {
  const chosen = $("#upload-file").files[0];
  if (!chosen) throw new Error("Choose a file to upload.");
  const made = await api.upload(chosen, $("#upload-purpose").value);
  $("#upload-file").value = "";
  notice(`Uploaded ${made.filename} as ${made.id}.`);
  await loadFiles();
}

async function createStore() {
  const body = { name: $("#store-name").value.trim() || null, file_ids: selectedValues($("#store-files")) };
  const made = await api.post("vector_stores", body);
  $("#store-name").value = "";
  $("#store-files").selectedIndex = -1;
  notice(`Created the vector store ${made.name || made.id}.`);
  await loadStores();
}

async function removeStore(store) {
  if (!window.confirm(`Delete the vector store ${store.name || store.id}?`)) return;
  await api.del(`vector_stores/${store.id}`);
  clear($("#store-detail")).hidden = true;
  await loadStores();
}

// One store's files, a way to add one of the uploaded files, and to remove each.
async function showStore(store) {
  const inStore = await api.listAll(`vector_stores/${store.id}/files`);
  const byId = new Map(files.map((f) => [f.id, f.filename]));
  const choice = el("select", { id: "store-add-file" });
  fillSelect(choice, files.filter((f) => !inStore.some((s) => s.id === f.id)), (f) => [f.id, f.filename]);
  const add = el("button", { type: "button", disabled: !choice.options.length, onclick: () => guarded(async () => {
    if (!choice.value) return;
    await api.post(`vector_stores/${store.id}/files`, { file_id: choice.value });
    await loadStores();
    await showStore(store);
  }) }, "Add file");
  const rows = inStore.map((f) => el("li", { "data-file-id": f.id },
    `${byId.get(f.id) || f.id} · ${f.status}`, f.last_error ? ` (${f.last_error.message})` : "", " ",
    el("button", { type: "button", class: "danger", onclick: () => guarded(async () => {
      await api.del(`vector_stores/${store.id}/files/${f.id}`);
      await loadStores();
      await showStore(store);
    }) }, "Remove")));
  const box = clear($("#store-detail"));
  box.hidden = false;
  box.append(el("h3", {}, `Files of ${store.name || store.id}`),
    el("ul", {}, rows.length ? rows : el("li", { class: "muted" }, "none")),
    el("div", { class: "bar" }, choice, add));
}

export function setUpFiles(changed) {
  onChange = changed;
  $("#upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(uploadSelected);
  });
  $("#store-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(createStore);
  });
}
