// One ticket: facts, deadlines, items, timeline and the actions its state allows for this user.
import { api, post } from "./api.js";
import { $, clear, departments, el, externalLink, sourceName, toast } from "./dom.js";
import {
  ACTIONS,
  CHANNELS,
  SEVERITIES,
  STAGES,
  STATUSES,
  actorName,
  currentStage,
  formatTime,
  leftText,
  workdaysLeft,
} from "./format.js";

const ticketId = Number($("ticket").dataset.ticketId);
// 并单/拆单 are for officers and admins (the API refuses everyone else anyway).
const deciding = ["officer", "admin"].includes(document.body.dataset.role);
const deptNames = departments();
let ticket = null;
let pending = null;

// Timeline words of 并单/拆单 (not actions of the transition table).
const TICKET_MOVES = {
  merge: "并单",
  merged_into: "并入其他工单",
  split: "拆单",
  create: "创建",
  attach_item: "追加条目",
};

// What each action asks for; "required" fields must be filled before the request is sent.
const FORMS = {
  acknowledge: { note: "签收说明（可选）" },
  handle: { note: "办理结果", required: ["result"] },
  respond: { note: "回应情况（电话、书面、当面等方式必填）", url: true, responseType: true },
  close: { note: "办结说明（可选）" },
  reassign: { note: "改派原因", department: true, required: ["department"] },
  escalate: { note: "督办意见" },
  reopen: { note: "重新打开的原因", required: ["note"] },
  return: { note: "退件原因", required: ["note"] },
  request_extension: { note: "延期理由", until: true, required: ["note", "until"] },
  approve_extension: { note: "审批意见（可选）" },
  reject_extension: { note: "驳回理由", required: ["note"] },
};

function fact(label, value) {
  return [el("dt", { text: label }), el("dd", {}, value)];
}

function renderFacts() {
  const stage = currentStage(ticket);
  const facts = $("t-facts");
  clear(facts);
  facts.append(
    ...fact("状态", STATUSES[ticket.status] || ticket.status),
    ...fact("级别", el("span", { class: `sev sev-${ticket.severity}`, text: SEVERITIES[ticket.severity] || ticket.severity })),
    ...fact("责任单位", deptNames.get(ticket.department) || ticket.department),
    ...fact("发现时间", formatTime(ticket.discovered_at)),
    ...fact("发布时间", formatTime(ticket.published_at)),
    ...fact("当前环节", stage ? `${STAGES[stage]}（${leftText(ticket, stage)}）` : "—"),
    ...fact("督办", ticket.escalated ? "是" : "否"),
  );
  if (ticket.replied_before_discovery) {
    facts.append(...fact("回应", el("span", { class: "tag replied-early", text: "已在发现前回应" })));
  }
  if (ticket.order_no || ticket.source_url) {
    facts.append(
      ...fact(
        "工单号",
        el(
          "span",
          {},
          el("span", { class: "order-no", text: ticket.order_no || "—" }),
          ticket.source_url ? [" ", externalLink(ticket.source_url, "原文")] : null,
        ),
      ),
    );
  }
  if (ticket.result) facts.append(...fact("办理结果", ticket.result));
  if (ticket.response_url) facts.append(...fact("回应地址", externalLink(ticket.response_url)));
  const ext = ticket.extension;
  if (ext && ext.pending) {
    facts.append(...fact("延期申请", `待审批，至 ${formatTime(ext.until)}${ext.reason ? `（${ext.reason}）` : ""}`));
  }
}

function renderDeadlines() {
  const body = $("t-deadlines");
  clear(body);
  for (const stage of ["acknowledge", "handle", "respond"]) {
    const met = ticket.met && ticket.met[stage];
    const overdue = ticket.overdue && ticket.overdue[stage];
    let state;
    if (stage === "acknowledge" && ticket.acknowledge_waived) state = "免签收（已公开回应）";
    else if (met) state = overdue ? "超期完成" : "按时完成";
    else if (overdue) state = workdaysLeft(ticket, stage) || "已超期";
    else state = leftText(ticket, stage);
    body.append(
      el(
        "tr",
        { class: overdue ? "overdue" : "" },
        el("td", { text: STAGES[stage] }),
        el("td", { text: formatTime(ticket.deadlines && ticket.deadlines[stage]) }),
        el("td", { text: met ? formatTime(met) : "—" }),
        el("td", { text: state }),
      ),
    );
  }
}

function renderItems() {
  const list = $("t-items");
  clear(list);
  for (const item of ticket.items || []) {
    const text = item.content ?? item.text ?? item.snippet ?? "";
    list.append(
      el(
        "li",
        { class: "item" },
        el("h3", { class: "item-title", text: item.title || "（无标题）" }),
        el(
          "div",
          { class: "meta" },
          el("span", { text: CHANNELS[item.channel] || item.channel || "" }),
          el("span", { text: sourceName(item.source || "") }),
          item.order_no
            ? el("span", { class: "order-no", text: `工单号 ${item.order_no}` })
            : item.external_id
              ? el("span", { class: "ext-id", text: `编号 ${item.external_id}` })
              : null,
          el("time", { text: formatTime(item.published_at) }),
        ),
        text ? el("div", { class: "item-text", text }) : null,
        el("div", { class: "links" }, externalLink(item.url, "查看原文"), splitButton(item)),
      ),
    );
  }
  if (!(ticket.items || []).length) list.append(el("li", { class: "muted", text: "没有条目" }));
}

const RESPONSE_TYPES = { online: "网上公开", phone: "电话", written: "书面", in_person: "当面", other: "其他" };

// What an entry changed besides the status, from its detail: 改派 target, 延期 date, response type, severity.
function changes(entry) {
  const d = entry.detail || {};
  const dept = (id) => deptNames.get(id) || id;
  const parts = [];
  if (d.to_department) parts.push(`改派：${dept(d.from_department || "")} → ${dept(d.to_department)}`);
  if (d.until) parts.push(`${entry.action === "request_extension" ? "申请延期至" : "延期至"} ${formatTime(d.until)}`);
  if (d.response_type) parts.push(`回应方式：${RESPONSE_TYPES[d.response_type] || d.response_type}`);
  if (entry.action === "change_severity" && d.to) {
    parts.push(`级别：${SEVERITIES[d.from] || d.from || "—"} → ${SEVERITIES[d.to] || d.to}`);
  }
  // 拆单: what was already sent about the item counts for this ticket and is not sent again.
  const pushed = (d.notified || []).filter((n) => n.pushed_at);
  if (pushed.length) parts.push(`预警已于 ${formatTime(pushed[0].pushed_at)} 推送，不再重复通知`);
  return parts.join("；");
}

// 拆单: the item leaves this ticket and becomes a new one (deadlines from its own discovery).
function splitButton(item) {
  if (!deciding || (ticket.items || []).length < 2 || ticket.merged_into) return null;
  const button = el("button", { type: "button", class: "split", text: "拆出为新工单" });
  button.addEventListener("click", async () => {
    if (!window.confirm(`把“${item.title || item.item_id}”拆出为新工单？新工单的时限从该条目的发现时间起算。`)) return;
    try {
      const answer = await post(`/api/v1/tickets/${ticketId}/split`, { item_id: item.item_id, version: ticket.version });
      toast(`已拆出为工单 ${answer.new_ticket.id}`);
      await load();
    } catch (err) {
      toast(err.status === 409 ? `${err.message}（工单已被他人更新，已刷新）` : err.message);
      if (err.status === 409) await load();
    }
  });
  return button;
}

// 可能是同一事件: open tickets of the department about the same place and subject, with the reason.
function renderRelated() {
  const list = $("t-related");
  clear(list);
  const related = ticket.related || [];
  for (const r of related) {
    const merge = deciding
      ? el("button", { type: "button", class: "merge", text: "并入本工单" })
      : null;
    if (merge) {
      merge.addEventListener("click", async () => {
        if (!window.confirm(`把工单 ${r.ticket_id} 并入本工单？时限取两者中最严的。`)) return;
        try {
          await post(`/api/v1/tickets/${ticketId}/merge`, { sources: [{ id: r.ticket_id }], version: ticket.version });
          toast(`工单 ${r.ticket_id} 已并入`);
          await load();
        } catch (err) {
          toast(err.status === 409 ? `${err.message}（工单已被他人更新，已刷新）` : err.message);
          if (err.status === 409) await load();
        }
      });
    }
    list.append(
      el(
        "li",
        {},
        el("a", { href: `/tickets/${Number(r.ticket_id)}`, text: `工单 ${r.ticket_id}：${r.title || "（无标题）"}` }),
        el("div", { class: "muted", text: r.reason || "" }),
        merge,
      ),
    );
  }
  $("t-related-box").classList.toggle("hidden", related.length === 0);
  const merged = $("t-merged");
  const notes = [];
  if (ticket.merged_into) notes.push(`本工单已并入工单 ${ticket.merged_into}，请在该工单上办理。`);
  if ((ticket.merged_from || []).length) notes.push(`并单：含原工单 ${ticket.merged_from.join("、")}。`);
  if (ticket.split_from) notes.push(`拆单：拆自工单 ${ticket.split_from}。`);
  merged.textContent = notes.join(" ");
  merged.classList.toggle("hidden", notes.length === 0);
}

// 办理 in the ledger's words: who handled it (and for which department), when, against which deadline, and
// the result. Entries recorded before the result was kept on the timeline show the ticket's current result
// on its latest own 办理 entry (a reopen clears it). Everything goes in as text, never as markup.
function handling(entry, latest) {
  if (entry.action !== "handle") return null;
  const d = entry.detail || {};
  const result = d.result ?? (entry === latest ? ticket.result : null);
  const dept = d.department ? `（${deptNames.get(d.department) || d.department}）` : "";
  let when = formatTime(entry.at);
  if (d.handle_due) when += `（${d.on_time === false ? "超期" : "按时"}，时限 ${formatTime(d.handle_due)}）`;
  return el(
    "dl",
    { class: "handling" },
    el("dt", { text: "办理人" }),
    el("dd", { text: `${actorName(entry.actor)}${dept}` }),
    el("dt", { text: "办理时间" }),
    el("dd", { text: when }),
    el("dt", { text: "办理结果" }),
    el("dd", { class: "handled-result", text: result || "—" }),
  );
}

function renderTimeline() {
  const list = $("t-timeline");
  clear(list);
  const own = (ticket.timeline || []).filter((e) => e.action === "handle" && !e.from_ticket);
  const latest = ticket.met && ticket.met.handle ? own[own.length - 1] : null;
  for (const entry of ticket.timeline || []) {
    const move =
      entry.from_status && entry.to_status && entry.from_status !== entry.to_status
        ? `${STATUSES[entry.from_status] || entry.from_status} → ${STATUSES[entry.to_status] || entry.to_status}`
        : "";
    list.append(
      el(
        "li",
        {},
        el("time", { text: formatTime(entry.at) }),
        // A move added later without a label here still reads as Chinese, never as its code.
        el("strong", { text: ` ${ACTIONS[entry.action] || TICKET_MOVES[entry.action] || "其他操作"} ` }),
        entry.from_ticket ? el("span", { class: "muted", text: `（原工单 ${entry.from_ticket}）` }) : null,
        el("span", { class: "actor", text: actorName(entry.actor) }),
        move ? el("span", { class: "muted", text: ` ${move}` }) : null,
        changes(entry) ? el("div", { class: "change", text: changes(entry) }) : null,
        handling(entry, latest),
        entry.note && entry.note !== (entry.detail || {}).result ? el("div", { class: "note", text: entry.note }) : null,
        entry.response_url ? el("div", {}, externalLink(entry.response_url)) : null,
      ),
    );
  }
}

function actionNames() {
  return (ticket.allowed_actions || []).map((a) => (typeof a === "string" ? a : a.action)).filter(Boolean);
}

function renderActions() {
  const box = $("t-actions");
  clear(box);
  const names = actionNames();
  for (const name of names) {
    const button = el("button", { type: "button", class: "action", dataset: { action: name }, text: ACTIONS[name] || name });
    button.addEventListener("click", () => openForm(name));
    box.append(button);
  }
  if (!names.length) box.append(el("p", { class: "muted", text: "当前状态下没有您可执行的操作" }));
}

function openForm(name) {
  pending = name;
  const spec = FORMS[name] || { note: "说明" };
  const form = $("action-form");
  $("af-title").textContent = ACTIONS[name] || name;
  $("af-note").placeholder = spec.note || "";
  $("af-note").value = "";
  $("af-url").value = "";
  $("af-until").value = "";
  $("af-error").textContent = "";
  $("af-notice").classList.add("hidden");
  form.querySelector(".af-url").classList.toggle("hidden", !spec.url);
  form.querySelector(".af-type").classList.toggle("hidden", !spec.responseType);
  if (spec.responseType) $("af-type").value = "online";
  form.querySelector(".af-department").classList.toggle("hidden", !spec.department);
  form.querySelector(".af-until").classList.toggle("hidden", !spec.until);
  if (spec.department) {
    const select = $("af-department");
    for (const option of select.options) option.disabled = option.value === ticket.department;
    const first = [...select.options].find((o) => !o.disabled);
    if (first) select.value = first.value;
  }
  form.classList.remove("hidden");
  $("af-note").focus();
}

async function submit(event) {
  event.preventDefault();
  const spec = FORMS[pending] || {};
  const body = { action: pending, version: ticket.version };
  const note = $("af-note").value.trim();
  if (note) body[pending === "handle" ? "result" : "note"] = note;
  if (spec.url && $("af-url").value.trim()) body.response_url = $("af-url").value.trim();
  // Only a response published online needs its address; by phone, in writing or in person it needs a note.
  const extra = [];
  if (spec.responseType) {
    body.response_type = $("af-type").value;
    extra.push(body.response_type === "online" ? "response_url" : "note");
  }
  if (spec.department) body.department = $("af-department").value;
  // A date means the end of that day in Beijing time, as deadlines in working days do.
  if (spec.until && $("af-until").value) body.until = `${$("af-until").value}T23:59:59+08:00`;
  const missing = [...(spec.required || []), ...extra].filter((k) => !body[k]);
  if (missing.length) {
    const names = { note: "说明", result: "办理结果", response_url: "回应链接", department: "改派部门", until: "延期日期" };
    $("af-error").textContent = `请填写：${missing.map((k) => names[k]).join("、")}`;
    return;
  }
  $("af-submit").disabled = true;
  try {
    await post(`/api/v1/tickets/${ticketId}/actions`, body);
    toast(`${ACTIONS[pending] || pending}成功`);
    $("action-form").classList.add("hidden");
    pending = null;
    await load();
  } catch (err) {
    if (err.status === 409) {
      // Someone else changed the ticket: one message, the form closed, the ticket as it is now.
      $("action-form").classList.add("hidden");
      pending = null;
      await load();
      toast(`${err.message}。工单已被他人更新，已刷新，请核对后重试。`, "error");
    } else {
      $("af-error").textContent = err.message;
    }
  } finally {
    $("af-submit").disabled = false;
  }
}

async function load() {
  try {
    ticket = await api(`/api/v1/tickets/${ticketId}`);
  } catch (err) {
    $("t-body").classList.add("hidden");
    const box = $("t-error");
    box.textContent = err.status === 404 ? "工单不存在，或您无权查看。" : `加载失败：${err.message}`;
    box.classList.remove("hidden");
    return;
  }
  document.title = `工单 ${ticket.id} · ${ticket.title || ""}`;
  $("t-title").textContent = `工单 ${ticket.id}：${ticket.title || "（无标题）"}`;
  renderFacts();
  renderDeadlines();
  renderItems();
  renderTimeline();
  renderActions();
  renderRelated();
  $("t-body").classList.remove("hidden");
}

$("action-form").addEventListener("submit", submit);
$("af-cancel").addEventListener("click", () => $("action-form").classList.add("hidden"));
load();

// Every stream this page opens, closed when the page is left (no stream lingers on a cached page).
const streams = [];
function watch(url) {
  const stream = new EventSource(url);
  streams.push(stream);
  return stream;
}
window.addEventListener("pagehide", () => {
  for (const stream of streams) stream.close();
});

// A suggestion found while the page is open (a new item matched) shows without a reload: the alert
// stream pushes "related" events; one about this ticket refreshes it.
function eventFor(event) {
  try {
    return Number(JSON.parse(event.data).ticket_id) === ticketId;
  } catch {
    return false;
  }
}

// Someone else acted on this ticket: reload status, timeline and version. An open form keeps what the
// user typed; a notice says the ticket changed, and the next submit carries the current version.
let refreshTimer = null;
function changedElsewhere() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    const formOpen = !$("action-form").classList.contains("hidden");
    const before = ticket && ticket.version;
    await load();
    if (formOpen && ticket && ticket.version !== before) {
      const notice = $("af-notice");
      notice.textContent = "工单已被他人更新";
      notice.classList.remove("hidden");
    }
  }, 300);
}

if (window.EventSource) {
  watch("/api/v1/alerts/stream").addEventListener("related", (event) => {
    if (eventFor(event)) load();
  });
  let opened = false;
  const changes = watch("/api/v1/tickets/stream");
  changes.addEventListener("ticket", (event) => {
    if (eventFor(event)) changedElsewhere();
  });
  changes.addEventListener("open", () => {
    setLive("实时", true);
    // A new connection starts at "now": what changed while it was down is read from the ticket itself.
    if (opened) changedElsewhere();
    opened = true;
  });
  changes.addEventListener("error", () => {
    // The browser reconnects by itself unless the stream is closed for good (e.g. the session ended).
    setLive(changes.readyState === EventSource.CLOSED ? "已断开" : "重新连接中…", false);
  });
}

function setLive(text, ok) {
  const node = $("live-state");
  node.textContent = text;
  node.classList.toggle("ok", ok);
}
