// The auditor's page: the audit log newest first, filtered by user, action and time, and the chain's state.
import { api } from "./api.js";
import { $, clear, el } from "./dom.js";
import { ACTIONS, CHANNELS, SEVERITIES, STAGES, formatTime } from "./format.js";

const PAGE = 100;
const RESULTS = { success: "成功", failure: "失败", denied: "拒绝" };
const EVENTS = new Map(JSON.parse($("audit-event-names").textContent));
let oldestShown = null;

const eventName = (type) => EVENTS.get(type) || type;

// Detail keys and values read as Chinese where they name something known; the rest is shown as given (as text).
const KEYS = {
  action: "动作",
  alert_id: "预警",
  attempts: "失败次数",
  before: "早于",
  by: "操作人",
  channel: "渠道",
  deadlines: "时限",
  deadlines_before: "原时限",
  deleted: "删除条数",
  department: "部门",
  from: "原值",
  from_department: "原部门",
  from_ticket: "原工单",
  into: "并入工单",
  item: "条目",
  item_id: "条目",
  items: "条目",
  merged: "并入的工单",
  method: "请求方法",
  new_ticket: "新工单",
  objects: "查看的内容",
  path: "路径",
  q: "检索词",
  reason: "原因",
  replied_at: "答复时间",
  response_type: "回应方式",
  retention_days: "保留天数",
  role: "角色",
  severity: "严重程度",
  source: "来源",
  source_id: "来源",
  stages: "环节",
  start_urls: "起始地址",
  state: "状态",
  to: "新值",
  to_department: "新部门",
  until: "截至",
  username: "用户名",
  version: "版本",
};
const ROLES = { officer: "舆情专员", department: "部门用户", leader: "领导", admin: "管理员", auditor: "审计员" };
const VALUES = { ...ROLES, ...SEVERITIES, ...CHANNELS, ...STAGES };
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;

function shownValue(key, value) {
  if (value === null || value === undefined || value === "") return "—";
  if (key === "action") return ACTIONS[value] || value;
  if (typeof value === "boolean") return value ? "是" : "否";
  if (typeof value === "string") {
    if (ISO_TIME.test(value)) return formatTime(value);
    return VALUES[value] || value;
  }
  if (Array.isArray(value)) return value.map((v) => shownValue(key, v)).join("、");
  if (typeof value === "object") {
    return Object.entries(value)
      .map(([k, v]) => `${KEYS[k] || STAGES[k] || k}：${shownValue(k, v)}`)
      .join("，");
  }
  return String(value);
}

function detailText(record) {
  const d = record.detail || {};
  return Object.entries(d)
    .map(([key, value]) => `${KEYS[key] || key}：${shownValue(key, value)}`)
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
