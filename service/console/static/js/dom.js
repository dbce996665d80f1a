// DOM building with text nodes only: crawled text never reaches innerHTML, so markup in it stays text.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) throw new Error("event handlers are attached with addEventListener");
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export const $ = (id) => document.getElementById(id);

// Only http(s) links are made clickable: a crawled "javascript:" URL must never become an href.
export function safeUrl(url) {
  if (typeof url !== "string" || !url) return null;
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

export function externalLink(url, label) {
  const href = safeUrl(url);
  if (!href) return el("span", { class: "muted", text: label || "（无有效链接）" });
  return el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", class: "ext" }, label || href);
}

// Highlights come as [start, end) offsets in Unicode code points (the server counts in Python str
// indexes); JavaScript strings count UTF-16 units, so the text is split into code points first.
export function highlighted(text, highlights) {
  const chars = Array.from(text || "");
  const spans = (highlights || [])
    .map((h) => ({ start: Math.max(0, h.start | 0), end: Math.min(chars.length, h.end | 0), term: h.term }))
    .filter((h) => h.end > h.start)
    .sort((a, b) => a.start - b.start || b.end - a.end);
  const fragment = document.createDocumentFragment();
  let at = 0;
  for (const span of spans) {
    if (span.end <= at) continue; // overlapping or nested: the earlier, longer one already covers it
    const start = Math.max(span.start, at);
    if (start > at) fragment.append(document.createTextNode(chars.slice(at, start).join("")));
    const mark = document.createElement("mark");
    mark.textContent = chars.slice(start, span.end).join("");
    if (span.term) mark.title = String(span.term);
    fragment.append(mark);
    at = span.end;
  }
  if (at < chars.length) fragment.append(document.createTextNode(chars.slice(at).join("")));
  return fragment;
}

export function toast(message, kind = "info") {
  const box = $("toast");
  if (!box) return;
  box.textContent = message;
  box.className = `toast ${kind}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.add("hidden"), 4000);
}

export function departments() {
  const node = $("departments-data");
  try {
    return new Map(JSON.parse(node ? node.textContent : "[]"));
  } catch {
    return new Map();
  }
}

// Rule and source names by id (from departments.yaml and the sources); an unknown id is shown as it is.
let namesCache = null;
function names() {
  if (namesCache) return namesCache;
  const node = $("names-data");
  try {
    namesCache = JSON.parse(node ? node.textContent : "{}") || {};
  } catch {
    namesCache = {};
  }
  return namesCache;
}

export const ruleName = (id) => (names().rules || {})[id] || id;
export const sourceName = (id) => (names().sources || {})[id] || id;
