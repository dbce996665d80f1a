// The leaders' dashboard: figures, the 30-day trend, hot terms, on-time rates per department, volume by
// channel and day, top sources, regions, overdue list.
// Charts are drawn by the ECharts copy this service serves itself (/static/vendor/echarts.min.js), as SVG:
// sharp in print, and their labels are elements a test can measure (no two may overlap on a phone).
import { api } from "./api.js";
import { $, clear, departments, el, sourceName } from "./dom.js";
import { CHANNELS, STAGES, currentStage, daysAgo, leftText, secondsLeft, shanghaiDay } from "./format.js";

const deptNames = departments();
const charts = {};

function chart(id) {
  if (!window.echarts) return null;
  if (!charts[id]) charts[id] = window.echarts.init($(id), null, { renderer: "svg" });
  return charts[id];
}

// A phone-width chart: fewer, shorter, rotated labels.
function narrow() {
  return window.matchMedia("(max-width: 760px)").matches;
}

// 2026-11-29 -> 11-29: thirty dates fit under a chart only without their year.
const shortDay = (day) => String(day).slice(5);

// Legends scroll on one line instead of wrapping over the plot.
const LEGEND = { top: 0, type: "scroll" };
// Day labels sit a little lower than ECharts puts them, clear of the value axis's "0" beside the first one.
const DAY_LABELS = { formatter: shortDay, hideOverlap: true, margin: 14 };

// Rates come as 0..1 (null when no ticket of that stage was decided yet); shown as percentages.
function rateOf(row, stage) {
  const value = row[`${stage}_on_time_rate`];
  return typeof value === "number" ? value * 100 : null;
}

function rowsOf(stats) {
  return (stats && stats.results) || [];
}

function drawOnTime(rows) {
  const c = chart("chart-ontime");
  if (!c) return;
  const names = rows.map((r) => deptNames.get(r.department) || r.department);
  c.setOption(
    {
      tooltip: { trigger: "axis", valueFormatter: (v) => (v === null || v === undefined ? "—" : `${v.toFixed(1)}%`) },
      legend: LEGEND,
      grid: { left: 8, right: 16, bottom: 8, top: 32, containLabel: true },
      xAxis: {
        type: "category",
        data: names,
        axisLabel: {
          interval: narrow() ? "auto" : 0,
          rotate: names.length > (narrow() ? 2 : 5) ? 30 : 0,
          width: narrow() ? 72 : 110,
          overflow: "truncate",
          hideOverlap: true,
          margin: 12,
        },
      },
      yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
      series: Object.entries(STAGES).map(([stage, label]) => ({ name: label, type: "bar", data: rows.map((r) => rateOf(r, stage)) })),
    },
    true,
  );
}

function drawVolume(byDay) {
  const c = chart("chart-volume");
  if (!c) return;
  const days = [...new Set(byDay.map((r) => r.day))].sort();
  const channels = Object.keys(CHANNELS);
  c.setOption(
    {
      tooltip: { trigger: "axis" },
      legend: LEGEND,
      grid: { left: 8, right: 16, bottom: 8, top: 32, containLabel: true },
      xAxis: { type: "category", data: days, axisLabel: DAY_LABELS },
      yAxis: { type: "value", minInterval: 1 },
      series: channels.map((ch) => ({
        name: CHANNELS[ch],
        // A line needs two days to be visible; a short range reads better as bars.
        type: days.length > 2 ? "line" : "bar",
        smooth: true,
        showSymbol: true,
        data: days.map((d) => byDay.filter((r) => r.day === d && r.channel === ch).reduce((n, r) => n + r.count, 0)),
      })),
    },
    true,
  );
}

function drawSources(top) {
  const c = chart("chart-sources");
  if (!c) return;
  const rows = top.slice(0, 10).reverse();
  c.setOption(
    {
      tooltip: { trigger: "axis" },
      grid: { left: 8, right: 24, bottom: 8, top: 8, containLabel: true },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: {
        type: "category",
        data: rows.map((r) => sourceName(r.source)),
        axisLabel: { width: narrow() ? 90 : 110, overflow: "truncate", hideOverlap: true },
      },
      series: [{ type: "bar", data: rows.map((r) => r.count) }],
    },
    true,
  );
}

function renderStatsTable(rows) {
  const body = $("stats-rows");
  clear(body);
  const cell = (v) => el("td", { text: v === null || v === undefined ? "—" : String(v) });
  const rate = (v) => el("td", { text: v === null ? "—" : `${v.toFixed(1)}%` });
  for (const r of rows) {
    body.append(
      el(
        "tr",
        {},
        el("td", { text: deptNames.get(r.department) || r.department }),
        cell(r.total),
        cell((r.by_status && r.by_status.closed) || 0),
        cell(r.overdue),
        rate(rateOf(r, "acknowledge")),
        rate(rateOf(r, "handle")),
        rate(rateOf(r, "respond")),
      ),
    );
  }
}

// Volume and sources are counted from the alert feed of the chosen days (the stats API is per department).
async function volumeAndSources(from, to) {
  const alerts = [];
  // Newest first, page by page, until the pages reach back before the first chosen day (bounded).
  for (let page = 1; page <= 25; page += 1) {
    const data = await api("/api/v1/alerts", { query: { page, size: 200 } });
    const results = (data && data.results) || [];
    alerts.push(...results);
    const oldest = results.length ? shanghaiDay(new Date(results[results.length - 1].created_at)) : "";
    if (results.length < 200 || oldest < from) break;
  }
  const counts = new Map();
  const sources = new Map();
  for (const a of alerts) {
    const day = shanghaiDay(new Date(a.created_at));
    if (day < from || day > to) continue;
    const key = `${day}\u0000${a.channel}`;
    counts.set(key, (counts.get(key) || 0) + 1);
    sources.set(a.source, (sources.get(a.source) || 0) + 1);
  }
  const byDay = [...counts].map(([key, count]) => {
    const [day, channel] = key.split("\u0000");
    return { day, channel, count };
  });
  const top = [...sources].map(([source, count]) => ({ source, count })).sort((a, b) => b.count - a.count);
  return { byDay, top };
}

// 地域分布: tickets per region named in their first item (GET /api/v1/stats/regions), open ones apart.
function drawRegions(rows) {
  const c = chart("chart-regions");
  if (!c) return;
  const top = rows.slice(0, 15).reverse();
  c.setOption(
    {
      tooltip: { trigger: "axis" },
      legend: LEGEND,
      grid: { left: 8, right: 16, bottom: 8, top: 32, containLabel: true },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: {
        type: "category",
        data: top.map((r) => r.region),
        axisLabel: { width: narrow() ? 90 : 120, overflow: "truncate", hideOverlap: true },
      },
      series: [
        { name: "工单", type: "bar", data: top.map((r) => r.count) },
        { name: "未办结", type: "bar", data: top.map((r) => r.open) },
      ],
    },
    true,
  );
}

// 近 30 天趋势: new items, alerts and tickets per day (GET /api/v1/stats/trend); fixed to the last 30 days.
function drawTrend(rows) {
  const c = chart("chart-trend");
  if (!c) return;
  const lines = [
    ["items", "新增条目"],
    ["alerts", "预警"],
    ["tickets", "工单"],
  ].filter(([key]) => rows.some((r) => r[key] !== null && r[key] !== undefined)); // departments: no items
  c.setOption(
    {
      tooltip: { trigger: "axis" },
      legend: LEGEND,
      grid: { left: 8, right: 16, bottom: 8, top: 32, containLabel: true },
      xAxis: { type: "category", data: rows.map((r) => r.day), axisLabel: DAY_LABELS },
      yAxis: { type: "value", minInterval: 1 },
      series: lines.map(([key, name]) => ({ name, type: "line", showSymbol: false, data: rows.map((r) => r[key]) })),
    },
    true,
  );
}

// 热词: the terms found in the most texts of the chosen days (GET /api/v1/stats/terms), biggest on top.
function drawTerms(page) {
  const c = chart("chart-terms");
  if (!c) return;
  const rows = (page.results || []).slice(0, narrow() ? 10 : 15).reverse();
  const basis = page.basis === "tickets" ? "本部门工单标题" : "条目";
  $("terms-note").textContent = rows.length
    ? `统计了所选日期内最新的 ${page.sample} 条${basis}（最多 ${page.sample_cap} 条），数字为出现该词的条数`
    : "所选日期内没有可统计的内容";
  c.setOption(
    {
      tooltip: { trigger: "axis" },
      grid: { left: 8, right: 24, bottom: 8, top: 8, containLabel: true },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", data: rows.map((r) => r.term), axisLabel: { width: 96, overflow: "truncate", hideOverlap: true } },
      series: [{ name: "条数", type: "bar", data: rows.map((r) => r.count) }],
    },
    true,
  );
}

async function renderOverdue() {
  const body = $("overdue-rows");
  clear(body);
  const data = await api("/api/v1/tickets", {
    query: { overdue: "true", status: "new,acknowledged,handled,responded,returned", size: 200 },
  });
  const tickets = ((data && data.results) || []).filter((t) => t.status !== "closed");
  for (const t of tickets) {
    const stage = currentStage(t);
    const late = Object.entries(t.overdue || {})
      .filter(([, v]) => v)
      .map(([s]) => STAGES[s] || s)
      .join("、");
    body.append(
      el(
        "tr",
        { class: "overdue" },
        el("td", { text: String(t.id) }),
        el("td", {}, el("a", { href: `/tickets/${Number(t.id)}`, text: t.title || "（无标题）" })),
        el("td", { text: deptNames.get(t.department) || t.department }),
        el("td", { text: stage ? `${late}（${leftText(t, stage)}）` : late }),
      ),
    );
  }
  $("overdue-empty").classList.toggle("hidden", tickets.length > 0);
}

const SOON_SECONDS = 4 * 3600;
const OPEN_STATUSES = "new,acknowledged,handled,responded,returned";

// The four figures at the top, as of now (they do not follow the chosen date range).
async function renderFigures() {
  const today = daysAgo(0);
  const [created, waiting, open] = await Promise.all([
    api("/api/v1/tickets", { query: { from: today, to: today, size: 1 } }),
    api("/api/v1/tickets", { query: { status: "new", size: 1 } }),
    api("/api/v1/tickets", { query: { status: OPEN_STATUSES, size: 200 } }),
  ]);
  const tickets = (open && open.results) || [];
  let soon = 0;
  let late = 0;
  for (const t of tickets) {
    const stage = currentStage(t);
    const left = stage ? secondsLeft(t, stage) : null;
    if (Object.values(t.overdue || {}).some(Boolean)) late += 1;
    else if (left !== null && left >= 0 && left <= SOON_SECONDS) soon += 1;
  }
  $("fig-today").textContent = String((created && created.total) || 0);
  $("fig-new").textContent = String((waiting && waiting.total) || 0);
  $("fig-soon").textContent = String(soon);
  $("fig-overdue").textContent = String(late);
}

async function load() {
  renderFigures().catch(() => {});
  api("/api/v1/stats/trend", { query: { days: 30 } })
    .then((page) => drawTrend((page && page.results) || []))
    .catch(() => {});
  const from = $("d-from").value;
  const to = $("d-to").value;
  let stats = null;
  try {
    stats = await api("/api/v1/stats", { query: { from, to } });
  } catch (err) {
    $("stats-rows").replaceChildren(el("tr", {}, el("td", { colspan: "7", class: "error", text: `统计加载失败：${err.message}` })));
  }
  const rows = rowsOf(stats);
  if (stats) {
    drawOnTime(rows);
    renderStatsTable(rows);
  }
  try {
    const { byDay, top } = await volumeAndSources(from, to);
    drawVolume(byDay);
    drawSources(top);
  } catch {
    // The feed may be closed to this role; the other panels still stand.
  }
  try {
    drawTerms(await api("/api/v1/stats/terms", { query: { from, to } }));
  } catch {
    $("terms-note").textContent = "热词暂不可用";
  }
  try {
    const regions = await api("/api/v1/stats/regions", { query: { from, to } });
    drawRegions((regions && regions.results) || []);
  } catch {
    // Shown when it can be; the other panels still stand.
  }
  await renderOverdue().catch(() => {});
}

$("d-from").value = daysAgo(29);
$("d-to").value = daysAgo(0);
$("d-apply").addEventListener("click", load);
const fitCharts = () =>
  Object.values(charts).forEach((c) => {
    c.resize({ animation: { duration: 0 } });
    c.getZr().flush(); // now, not at the next frame: a print takes the page as it is
  });
window.addEventListener("resize", fitCharts);
// Printing lays the page out again (A4, shorter charts) without a resize event: each chart is fitted to its
// printed box when printing starts, and back to the screen after.
window.matchMedia("print").addEventListener("change", fitCharts);
load();
