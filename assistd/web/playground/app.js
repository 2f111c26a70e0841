// The playground's entry point: the key, the tabs, and what each tab needs of the others
// (the chat's assistant list, the assistant form's files and vector stores).

import * as api from "./api.js";
import { loadAssistants, setUpAssistants, showCatalog } from "./assistants.js";
import { forgetThreads, knowTools, setUpChat, showAssistants, showFiles } from "./chat.js";
import { $, guarded, notice } from "./dom.js";
import { loadFiles, loadStores, setUpFiles } from "./files.js";

function showTab(name) {
  for (const section of document.querySelectorAll("section.tab")) {
    section.hidden = section.id !== `tab-${name}`;
  }
  for (const button of document.querySelectorAll("#tabs button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
}

function signedIn(on) {
  $("#tabs").hidden = !on;
  $("#intro").hidden = on;
  $("#key-state").textContent = on ? "key in use" : "no key";
  if (on) showTab(document.querySelector("#tabs button.active")?.dataset.tab || "chat");
  else for (const section of document.querySelectorAll("section.tab")) section.hidden = true;
}

async function loadAll() {
  await Promise.all([loadAssistants(), loadFiles(), loadStores()]);
}

// Tries the key on a cheap call first, so a wrong one is told at once.
async function useKey(key) {
  api.saveKey(key);
  try {
    await api.get("assistants", { limit: 1 });
  } catch (error) {
    api.saveKey("");
    signedIn(false);
    throw error;
  }
  $("#key").value = "";
  signedIn(true);
  await loadAll();
}

function setUp() {
  setUpAssistants((assistants) => {
    showAssistants(assistants);
    knowTools(assistants);
  });
  setUpFiles((files, stores) => {
    showCatalog(files, stores);
    showFiles(files);
  });
  setUpChat();
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#key").value.trim();
    if (!key) return notice("Enter a key.", "error");
    return guarded(() => useKey(key));
  });
  $("#forget-key").addEventListener("click", () => {
    api.saveKey("");
    forgetThreads();
    signedIn(false);
    notice("The key is forgotten.");
  });
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  const saved = api.savedKey();
  if (saved) guarded(() => useKey(saved));
  else signedIn(false);
  document.body.dataset.ready = "true"; // the handlers are in place
}

setUp();
