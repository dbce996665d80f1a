// The live alert feed: first the latest page, then Server-Sent Events; a reconnect fills the gap by ?after=.
import { api, post } from "./api.js";
import { $, clear, departments, el, externalLink, highlighted, toast, ruleName } from "./dom.js";
import { CHANNELS, SEVERITIES, formatTime } from "./format.js";
import { beep, unlock } from "./sound.js";

const MAX_SHOWN = 500;
const FILTERS = ["channel", "severity", "department", "source"];
const deptNames = departments();
const sourceNames = (() => {
  try {
    return new Map(JSON.parse($("sources-data").textContent));
  } catch {
    return new Map();
  }
})();
const alerts = new Map(); // id -> alert
const readIds = new Set();
let lastId = 0;
let lastReadId = Number(localStorage.getItem("yuqing.alerts.lastRead") || 0);
let soundOn = localStorage.getItem("yuqing.alerts.sound") === "1";
const baseTitle = document.title;
const canTriage = ["officer", "admin"].includes(document.body.dataset.role);
const STATE_NAMES = { acknowledged: "已确认", noise: "误报" };

function filters() {
  const out = {};
  for (const name of FILTERS) out[name] = $(`f-${name}`).value;
  return out;
}

function passes(alert, f) {
  return (
    (!f.channel || alert.channel === f.channel) &&
    (!f.severity || alert.severity === f.severity) &&
    (!f.department || alert.department === f.department) &&
    (!f.source || alert.source === f.source)
  );
}

function isUnread(alert) {
  return alert.id > lastReadId && !readIds.has(alert.id);
}

function snippetBlock(snippet) {
  const label = snippet.field === "title" ? "标题" : "正文";
  // An excerpt cut from longer text says so: otherwise a cut reads as whole (a masked phone number cut to
  // "139****567" looks like a wrong number, a sentence cut mid-way like the citizen's full words).
  return el(
    "p",
    { class: "snippet" },
    el("span", { class: "field", text: label }),
    snippet.prefix ? "…" : null,
    highlighted(snippet.text, snippet.highlights),
    snippet.suffix ? "…" : null,
  );
}

function titleNode(alert) {
  const titleSnippet = (alert.snippets || []).find((s) => s.field === "title" && s.text === alert.title);
  return titleSnippet ? highlighted(alert.title, titleSnippet.highlights) : document.createTextNode(alert.title || "（无标题）");
}

function render(alert) {
  const sev = alert.severity || "normal";
  const li = el("li", {
    class: `alert sev-${sev}${isUnread(alert) ? " unread" : ""}`,
    dataset: { id: String(alert.id) },
  });
  const meta = el(
    "div",
    { class: "meta" },
    el("span", { class: `sev sev-${sev}`, text: SEVERITIES[sev] || sev }),
    el("span", { class: "channel", text: CHANNELS[alert.channel] || alert.channel || "" }),
    el("span", { class: "source", text: sourceNames.get(alert.source) || alert.source || "" }),
    el("span", { class: "dept", text: deptNames.get(alert.department) || alert.department || "" }),
    el("time", { datetime: alert.created_at, text: formatTime(alert.created_at) }),
  );
  const heading = el("h3", { class: "title" }, titleNode(alert));
  const body = el("div", { class: "snippets" }, (alert.snippets || []).filter((s) => s.field !== "title").map(snippetBlock));
  const links = el("div", { class: "links" }, externalLink(alert.url, "查看原文"));
  if (alert.ticket_id) links.append(el("a", { href: `/tickets/${Number(alert.ticket_id)}`, text: `工单 ${Number(alert.ticket_id)}` }));
  if (alert.rule_ids && alert.rule_ids.length) links.append(el("span", { class: "rules muted", text: `规则：${alert.rule_ids.map(ruleName).join("、")}` }));
  if (STATE_NAMES[alert.state]) links.append(el("span", { class: `state state-${alert.state}`, text: STATE_NAMES[alert.state] }));
  if (canTriage && alert.state === "new") {
    // One group, kept together at the row's end: on a phone it moves to a line of its own as a whole.
    const group = el("span", { class: "triage-group" });
    for (const [state, label] of [["acknowledged", "确认"], ["noise", "标为误报"]]) {
      const button = el("button", { type: "button", class: "triage", dataset: { state }, text: label });
      button.addEventListener("click", (event) => triage(event, alert, state));
      group.append(button);
    }
    links.append(group);
  }
  li.append(meta, heading, body, links);
  li.addEventListener("click", () => {
    readIds.add(alert.id);
    li.classList.remove("unread");
    updateBadge();
  });
  return li;
}

async function triage(event, alert, state) {
  event.stopPropagation();
  try {
    const changed = await post(`/api/v1/alerts/${Number(alert.id)}/state`, { state });
    alerts.set(alert.id, changed);
    readIds.add(alert.id);
    const old = document.querySelector(`#feed > li[data-id="${Number(alert.id)}"]`);
    if (old) old.replaceWith(render(changed));
    updateBadge();
  } catch (err) {
    toast(`操作失败：${err.message}`, "error");
  }
}

function renderAll() {
  const f = filters();
  const list = $("feed");
  clear(list);
  const shown = [...alerts.values()].filter((a) => passes(a, f)).sort((a, b) => b.id - a.id).slice(0, MAX_SHOWN);
  for (const alert of shown) list.append(render(alert));
  $("feed-empty").classList.toggle("hidden", shown.length > 0);
  $("feed-summary").textContent = `共 ${alerts.size} 条，显示 ${shown.length} 条`;
  updateBadge();
}

function updateBadge() {
  const unread = [...alerts.values()].filter(isUnread).length;
  const badge = $("unread-badge");
  if (badge) {
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.classList.toggle("hidden", unread === 0);
  }
  document.title = unread ? `(${unread}) ${baseTitle}` : baseTitle;
}

function addSource(source) {
  if (!source) return;
  const select = $("f-source");
  if ([...select.options].some((o) => o.value === source)) return;
  select.append(el("option", { value: source, text: sourceNames.get(source) || source }));
}

function remember(alert) {
  if (!alert || typeof alert.id !== "number" || alerts.has(alert.id)) return false;
  alerts.set(alert.id, alert);
  lastId = Math.max(lastId, alert.id);
  addSource(alert.source);
  return true;
}

// A live alert goes on top without re-rendering the list (the officer may be reading it).
function arrive(alert) {
  if (!remember(alert)) return;
  const f = filters();
  if (!passes(alert, f)) {
    updateBadge();
    return;
  }
  const list = $("feed");
  list.prepend(render(alert));
  while (list.children.length > MAX_SHOWN) list.lastElementChild.remove();
  $("feed-empty").classList.add("hidden");
  $("feed-summary").textContent = `共 ${alerts.size} 条，显示 ${list.children.length} 条`;
  updateBadge();
  if (soundOn) beep(alert.severity);
}

async function catchUp() {
  let after = lastId;
  // Bounded: a long outage fills at most a few pages; the rest is in the ticket queue.
  for (let page = 0; page < 10; page += 1) {
    const data = await api("/api/v1/alerts", { query: { after } });
    const results = (data && data.results) || [];
    results.sort((a, b) => a.id - b.id);
    for (const alert of results) arrive(alert);
    if (!results.length || lastId === after) return;
    after = lastId;
  }
}

function setLive(text, ok) {
  const node = $("live-state");
  node.textContent = text;
  node.classList.toggle("ok", ok);
}

function connect() {
  const source = new EventSource("/api/v1/alerts/stream");
  const onData = (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    for (const alert of Array.isArray(data) ? data : [data.alert || data]) arrive(alert);
  };
  source.addEventListener("message", onData);
  source.addEventListener("alert", onData);
  source.addEventListener("open", () => {
    setLive("实时", true);
    catchUp().catch(() => {});
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // Closed for good (e.g. the session ended): ask the API why; a 401 goes to the login page.
      setLive("已断开", false);
      api("/api/v1/alerts", { query: { after: lastId } })
        .then(() => setTimeout(connect, 5000))
        .catch(() => setTimeout(connect, 15000));
    } else {
      setLive("重新连接中…", false);
    }
  });
}

async function start() {
  const params = new URLSearchParams(location.search);
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value) {
      if (name === "source") addSource(value);
      $(`f-${name}`).value = value;
    }
  }
  for (const name of FILTERS) {
    $(`f-${name}`).addEventListener("change", () => {
      const query = new URLSearchParams();
      for (const [k, v] of Object.entries(filters())) if (v) query.set(k, v);
      history.replaceState(null, "", query.toString() ? `?${query}` : location.pathname);
      renderAll();
    });
  }
  const toggle = $("sound-toggle");
  toggle.checked = soundOn;
  toggle.addEventListener("change", () => {
    soundOn = toggle.checked;
    localStorage.setItem("yuqing.alerts.sound", soundOn ? "1" : "0");
    if (soundOn && unlock()) beep("minor");
  });
  // A stored "on" still needs a gesture before audio may play: the first click anywhere unlocks it.
  document.addEventListener("click", () => soundOn && unlock(), { once: true });
  $("mark-read").addEventListener("click", () => {
    lastReadId = lastId;
    readIds.clear();
    localStorage.setItem("yuqing.alerts.lastRead", String(lastReadId));
    renderAll();
  });
  try {
    const data = await api("/api/v1/alerts", { query: { size: 200 } });
    for (const alert of (data && data.results) || []) remember(alert);
  } catch (err) {
    $("feed-summary").textContent = `加载失败：${err.message}`;
  }
  if (localStorage.getItem("yuqing.alerts.lastRead") === null) {
    // First visit on this browser: what was there before counts as seen; only new arrivals are unread.
    lastReadId = lastId;
    localStorage.setItem("yuqing.alerts.lastRead", String(lastReadId));
  }
  renderAll();
  connect();
  watchSources();
}

// A silent source is the worst failure: officers see failing sources above the feed, refreshed each minute.
async function watchSources() {
  const box = $("source-health");
  if (!["admin", "officer", "leader"].includes(document.body.dataset.role)) return; // sources are not theirs
  const refresh = async () => {
    let data;
    try {
      data = await api("/api/v1/sources", { redirectOn401: false });
    } catch {
      return; // roles without access to sources simply do not get the banner
    }
    const failing = ((data && data.results) || []).filter((s) => s.enabled && s.health && !s.health.healthy);
    clear(box);
    box.classList.toggle("hidden", failing.length === 0);
    if (failing.length === 0) return;
    box.append(el("strong", { text: `${failing.length} 个来源抓取异常：` }));
    for (const s of failing) {
      const reason = s.health.last_failure || "未知原因";
      box.append(
        el("div", { text: `${s.name}（${s.id}）连续失败 ${s.health.consecutive_failures} 次：${reason}` }),
      );
    }
    box.append(el("a", { href: "/sources", text: "查看来源" }));
  };
  await refresh();
  setInterval(refresh, 60_000);
}

start();
