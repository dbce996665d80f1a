// A department's ticket queue: overdue first, then by the time left for the current stage.
import { api } from "./api.js";
import { $, clear, departments, el, externalLink } from "./dom.js";
import { SEVERITIES, STAGES, STATUSES, currentStage, formatTime, isOverdue, leftText, secondsLeft } from "./format.js";

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
    el("td", { class: `left${left !== null && left < 0 ? " late" : ""}`, text: stage ? leftText(ticket, stage) : "—" }),
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

// Every change of a ticket this user may see (a new ticket, an action by anyone, a reassignment, a merge)
// arrives on the ticket change stream; the list reloads once a burst of changes has settled.
let reloadTimer = null;
function soon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(load, 400);
}
function setLive(text, ok) {
  const node = $("live-state");
  node.textContent = text;
  node.classList.toggle("ok", ok);
}

let opened = false;
function connect() {
  const stream = new EventSource("/api/v1/tickets/stream");
  stream.addEventListener("ticket", soon);
  stream.addEventListener("open", () => {
    setLive("实时", true);
    // A new connection starts at "now": what changed while none was open is read from the list.
    if (opened) soon();
    opened = true;
  });
  stream.addEventListener("error", () => {
    if (stream.readyState === EventSource.CLOSED) {
      // Closed for good (e.g. the session ended): a list request goes to the login page on a 401.
      setLive("已断开", false);
      setTimeout(() => load().then(connect), 15000);
    } else {
      setLive("重新连接中…", false);
    }
  });
}
if (window.EventSource) connect();
