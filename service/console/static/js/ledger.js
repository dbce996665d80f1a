// The ledger: the tickets of a date range, and buttons that download it as Excel or CSV.
import { api } from "./api.js";
import { $, clear, departments, el, externalLink } from "./dom.js";
import { SEVERITIES, STATUSES, daysAgo, formatTime } from "./format.js";

const deptNames = departments();
const form = $("ledger-form");

function stageCell(ticket, stage) {
  const met = ticket.met && ticket.met[stage];
  const late = ticket.overdue && ticket.overdue[stage];
  const text = met ? `${formatTime(met)}${late ? "（超期）" : ""}` : late ? "超期未完成" : "—";
  return el("td", { class: late ? "late" : "", text });
}

async function preview() {
  const body = $("ledger-rows");
  const query = { from: $("l-from").value, to: $("l-to").value, size: 200 };
  const dept = form.elements.department;
  if (dept && dept.value) query.department = dept.value;
  try {
    const data = await api("/api/v1/tickets", { query });
    const tickets = ((data && data.results) || []).sort((a, b) => a.id - b.id);
    clear(body);
    for (const t of tickets) {
      body.append(
        el(
          "tr",
          {},
          el("td", {}, el("a", { href: `/tickets/${Number(t.id)}`, text: String(t.id) })),
          el("td", { text: t.title || "" }),
          el(
            "td",
            { class: "orig" },
            t.order_no ? el("span", { class: "order-no", text: t.order_no }) : null,
            t.source_url ? [t.order_no ? " " : null, externalLink(t.source_url, "原文")] : null,
            t.order_no || t.source_url ? null : "—",
          ),
          el("td", { text: deptNames.get(t.department) || t.department }),
          el("td", { text: SEVERITIES[t.severity] || t.severity }),
          el("td", { text: STATUSES[t.status] || t.status }),
          el("td", { text: formatTime(t.discovered_at) }),
          stageCell(t, "acknowledge"),
          stageCell(t, "handle"),
          stageCell(t, "respond"),
        ),
      );
    }
    $("ledger-empty").classList.toggle("hidden", tickets.length > 0);
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "10", class: "error", text: `加载失败：${err.message}` })));
  }
}

// The export's own limits (service/exports/api.py): checked here first, because the download replaces the
// page and a refusal would otherwise leave the user on a bare JSON answer instead of the console.
const MAX_DAYS = 366;

function rangeProblem(from, to) {
  if (!from || !to) return "请选择发现日期的起止";
  const days = (Date.parse(to) - Date.parse(from)) / 86400000;
  if (days < 0) return "开始日期不能晚于结束日期";
  if (days >= MAX_DAYS) return `日期范围最多 ${MAX_DAYS} 天，更长的范围请用命令行 yuqing export`;
  return "";
}

// The download is a plain GET (the session cookie authorises it); empty fields are left out of the URL.
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const problem = rangeProblem($("l-from").value, $("l-to").value);
  $("ledger-error").textContent = problem;
  $("ledger-error").hidden = !problem;
  if (problem) return;
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v) params.set(k, v);
  const submitter = event.submitter;
  if (submitter && submitter.name) params.set(submitter.name, submitter.value);
  location.assign(`${form.action}?${params}`);
});

$("l-from").value = daysAgo(6);
$("l-to").value = daysAgo(0);
for (const node of [$("l-from"), $("l-to"), form.elements.department]) {
  if (node && node.addEventListener) node.addEventListener("change", preview);
}
preview();
