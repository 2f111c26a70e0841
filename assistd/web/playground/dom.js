// Small DOM helpers. Text always goes in as text (never as HTML): whatever the server or a
// model returns is shown, not interpreted.

export function $(selector, root = document) {
  return root.querySelector(selector);
}

// el("tr", {class: "x", onclick: f}, child, "text", ...): an element with attributes,
// event handlers (on*) and children (nodes or strings; null and false are skipped).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

let noticeTimer = null;

// A line at the top of the page: errors stay until the next notice, news fades.
export function notice(text, kind = "info") {
  const box = $("#notice");
  box.textContent = text;
  box.className = kind;
  box.hidden = false;
  clearTimeout(noticeTimer);
  if (kind !== "error") noticeTimer = setTimeout(() => (box.hidden = true), 4000);
}

// Runs an async action, showing its error (an API error's own message) instead of throwing.
export async function guarded(action) {
  try {
    return await action();
  } catch (error) {
    notice(error.message || String(error), "error");
    return undefined;
  }
}

// <option>s for a <select>: items -> [value, label]; `selected` a Set of values.
export function fillSelect(select, items, toOption, selected = new Set(), keep = []) {
  clear(select);
  for (const [value, label] of keep) select.append(el("option", { value }, label));
  for (const item of items) {
    const [value, label] = toOption(item);
    select.append(el("option", { value, selected: selected.has(value) }, label));
  }
}

export function selectedValues(select) {
  return [...select.selectedOptions].map((option) => option.value).filter(Boolean);
}

export function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}
