// A department's ticket queue: overdue first, then by the time left for the current stage.
import { api } from "./api.js";
import { $, clear, departments, el, externalLink } from "./dom.js";
import { SEVERITIES, STAGES, STATUSES, currentStage, formatLeft, formatTime, isOverdue, secondsLeft } from "./format.js";

const deptNames = departments();
const OPEN = new Set(["new", "acknowledged", "handled", "responded", "returned"]);

function sortKey(ticket) {
  const stage = currentStage(ticket);
  const left = secondsLeft(ticket, stage);
  return [isOverdue(ticket) ? 0 : 1, left === null ? Infinity : left, -ticket.id];
}

function compare(a, b) {
  const ka = sortKey(a);
  const kb = sortKey(b);
  for (let i = 0; i < ka.length; i += 1) if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1;
  return 0;
}

function row(ticket) {
  const stage = currentStage(ticket);
  const left = stage ? secondsLeft(ticket, stage) : null;
  const overdue = isOverdue(ticket);
  const link = el("a", { href: `/tickets/${Number(ticket.id)}`, text: ticket.title || "（无标题）" });
  const tr = el(
    "tr",
    { class: overdue ? "overdue" : "", dataset: { id: String(ticket.id) } },
    el("td", { text: String(ticket.id) }),
    el(
      "td",
      { class: "title" },
      link,
      ticket.escalated ? el("span", { class: "tag escalated", text: "督办" }) : null,
      ticket.replied_before_discovery ? el("span", { class: "tag replied-early", text: "已在发现前回应" }) : null,
      ticket.item_count > 1
        ? el("span", { class: "muted", text: ` ${ticket.item_count} 条 / ${ticket.source_count} 个来源` })
        : null,
      ticket.order_no || ticket.source_url
        ? el(
            "span",
            { class: "orig" },
            ticket.order_no ? el("span", { class: "order-no", text: ` 工单号 ${ticket.order_no}` }) : null,
            ticket.source_url ? [" ", externalLink(ticket.source_url, "原文")] : null,
          )
        : null,
    ),
    el("td", {}, el("span", { class: `sev sev-${ticket.severity}`, text: SEVERITIES[ticket.severity] || ticket.severity })),
    el("td", { text: deptNames.get(ticket.department) || ticket.department }),
    el("td", { text: STATUSES[ticket.status] || ticket.status }),
    el("td", { text: stage ? STAGES[stage] : "—" }),
    el("td", { class: `left${left !== null && left < 0 ? " late" : ""}`, text: stage ? formatLeft(left) : "—" }),
    el("td", { text: formatTime(ticket.discovered_at) }),
  );
  return tr;
}

async function load() {
  const status = $("f-status").value;
  const department = $("f-department") ? $("f-department").value : "";
  const query = {
    status: status === "open" ? [...OPEN].join(",") : status,
    department,
    overdue: $("f-overdue").checked ? "true" : "",
    size: 200,
  };
  const body = $("ticket-rows");
  try {
    const data = await api("/api/v1/tickets", { query });
    const tickets = (data && data.results) || [];
    tickets.sort(compare);
    clear(body);
    for (const ticket of tickets) body.append(row(ticket));
    $("tickets-empty").classList.toggle("hidden", tickets.length > 0);
  } catch (err) {
    clear(body);
    body.append(el("tr", {}, el("td", { colspan: "8", class: "error", text: `加载失败：${err.message}` })));
  }
}

for (const id of ["f-status", "f-department", "f-overdue"]) {
  const node = $(id);
  if (node) node.addEventListener("change", load);
}
$("refresh").addEventListener("click", load);
load();
// The time left changes by itself; a quiet refresh keeps the queue honest on a screen left open.
setInterval(load, 60000);

// New alerts open or grow tickets: the list reloads shortly after one arrives, without a click.
let reloadTimer = null;
function soon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(load, 1500);
}
if (window.EventSource) {
  const stream = new EventSource("/api/v1/alerts/stream");
  stream.addEventListener("message", soon);
  stream.addEventListener("alert", soon);
}
