// The auditor's page: the audit log newest first, filtered by user, action and time, and the chain's state.
import { api } from "./api.js";
import { $, clear, el } from "./dom.js";
import { ACTIONS, formatTime } from "./format.js";

const PAGE = 100;
const RESULTS = { success: "成功", failure: "失败", denied: "拒绝" };
const EVENTS = new Map(JSON.parse($("audit-event-names").textContent));
let oldestShown = null;

const eventName = (type) => EVENTS.get(type) || type;

// Detail values read as Chinese where they name something known; the rest is shown as given (as text).
function detailText(record) {
  const d = record.detail || {};
  const parts = [];
  for (const [key, value] of Object.entries(d)) {
    let shown = value;
    if (key === "action") shown = ACTIONS[value] || value;
    if (typeof shown === "object" && shown !== null) shown = JSON.stringify(shown);
    parts.push(`${key}=${shown}`);
  }
  return parts.join("  ");
}

function row(r) {
  return el(
    "tr",
    { class: r.result === "success" ? "" : "warn-row" },
    el("td", { text: String(r.id) }),
    el("td", { text: formatTime(r.at) }),
    el("td", { text: r.username || "—" }),
    el("td", { text: eventName(r.event_type) }),
    el("td", { text: RESULTS[r.result] || r.result }),
    el("td", { text: r.address || "—" }),
    el("td", { class: "detail", text: detailText(r) }),
  );
}

function query(before) {
  const event = $("a-event").value;
  return {
    order: "desc",
    size: PAGE,
    username: $("a-user").value.trim(),
    event,
    from: $("a-from").value,
    to: $("a-to").value,
    before,
  };
}

async function load(more = false) {
  const body = $("audit-rows");
  if (!more) {
    clear(body);
    oldestShown = null;
  }
  let data;
  try {
    data = await api("/api/v1/audit", { query: query(more ? oldestShown : undefined) });
  } catch (err) {
    $("audit-summary").textContent = `加载失败：${err.message}`;
    return;
  }
  const results = (data && data.results) || [];
  for (const r of results) body.append(row(r));
  if (results.length) oldestShown = results[results.length - 1].id;
  const shown = body.children.length;
  $("audit-summary").textContent = `共 ${data.total} 条记录，已显示 ${shown} 条（最新的在前）`;
  $("audit-empty").classList.toggle("hidden", shown > 0);
  $("audit-more").classList.toggle("hidden", shown >= data.total || results.length < PAGE);
}

async function chain() {
  const box = $("chain-status");
  try {
    const status = await api("/api/v1/audit/verify");
    box.className = `chain ${status.ok ? "ok" : "bad"}`;
    box.textContent = status.ok
      ? "哈希链完整：记录未被篡改"
      : `哈希链断裂：${status.first_bad_id ? `第 ${status.first_bad_id} 号记录起` : "记录缺失"}可能被篡改或删除`;
  } catch (err) {
    box.className = "chain bad";
    box.textContent = `哈希链校验失败：${err.message}`;
  }
}

$("audit-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
$("audit-more").addEventListener("click", () => load(true));
load();
chain();
