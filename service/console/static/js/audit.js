// The auditor's page: the audit log newest first, filtered by user, action and time, and the chain's state.
import { api } from "./api.js";
import { $, clear, departments, el } from "./dom.js";
import { formatTime } from "./format.js";

const PAGE = 100;
const RESULTS = { success: "成功", failure: "失败", denied: "拒绝" };
const EVENTS = new Map(JSON.parse($("audit-event-names").textContent));
// The names of detail fields and of their values, from the service's one vocabulary (service/console/audit_labels.py).
const LABELS = JSON.parse($("audit-labels").textContent);
const DEPARTMENT_FIELDS = new Set(["department", "from_department", "to_department"]);
const deptNames = departments();
let oldestShown = null;

const eventName = (type) => EVENTS.get(type) || type;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;

function fieldName(key, value) {
  const isObject = value !== null && typeof value === "object" && !Array.isArray(value);
  return (isObject && LABELS.object_fields[key]) || LABELS.fields[key] || key;
}

// Values read as Chinese where their field names a known vocabulary; the rest is shown as given (as text).
function shownValue(key, value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean") return value ? "是" : "否";
  if (typeof value === "string") {
    const names = LABELS.values[key];
    if (names && Object.hasOwn(names, value)) return names[value];
    if (DEPARTMENT_FIELDS.has(key)) return deptNames.get(value) || value;
    if (ISO_TIME.test(value)) return formatTime(value);
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => shownValue(key, v)).join("、");
  if (typeof value === "object") {
    return Object.entries(value)
      .map(([k, v]) => `${fieldName(k, v)}：${shownValue(k, v)}`)
      .join("，");
  }
  return String(value);
}

function detailText(record) {
  const d = record.detail || {};
  return Object.entries(d)
    .map(([key, value]) => `${fieldName(key, value)}：${shownValue(key, value)}`)
    .join("；");
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
  const summary = $("audit-summary");
  const fail = (text) => {
    summary.textContent = text;
    summary.classList.add("error");
    $("audit-empty").classList.add("hidden");
    $("audit-more").classList.add("hidden");
  };
  summary.classList.remove("error");
  // The same check as the ledger page (and the API's own 422): a reversed range would list nothing, which
  // reads as "nothing happened".
  const from = $("a-from").value;
  const to = $("a-to").value;
  if (!more && from && to && from > to) {
    fail(`开始日期 ${from} 晚于结束日期 ${to}，请对调两个日期`);
    return;
  }
  let data;
  try {
    data = await api("/api/v1/audit", { query: query(more ? oldestShown : undefined) });
  } catch (err) {
    fail(`加载失败：${err.message}`);
    return;
  }
  const results = (data && data.results) || [];
  for (const r of results) body.append(row(r));
  if (results.length) oldestShown = results[results.length - 1].id;
  const shown = body.children.length;
  summary.textContent = `共 ${data.total} 条记录，已显示 ${shown} 条（最新的在前）`;
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
