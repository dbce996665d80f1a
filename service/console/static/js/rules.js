// The rule editor: parse errors at their position, a live test on pasted text, a trial on the last 7 days.
import { ApiError, api, post } from "./api.js";
import { $, clear, departments, el, highlighted, ruleName, sourceName, toast } from "./dom.js";
import { SEVERITIES, formatTime } from "./format.js";

const deptNames = departments();
// Leaders read the rules; changing or trying them is the officers' work (the API refuses it too).
const readOnly = document.body.dataset.role === "leader";
let rules = [];
let editing = null; // id of the rule being changed, null for a new one
let testTimer = null;
let testSeq = 0;

function ruleText(rule) {
  if (rule.expr) return rule.expr;
  const s = rule.structured || rule;
  const parts = [];
  for (const [key, label] of [["regions", "地域"], ["subjects", "主体"], ["events", "事件"], ["exclude", "排除"]]) {
    if (s[key] && s[key].length) parts.push(`${label}：${s[key].join("、")}`);
  }
  return parts.join("；");
}

function renderList() {
  const body = $("rule-rows");
  clear(body);
  const dept = $("rf-department").value;
  for (const rule of rules.filter((r) => !dept || r.department === dept)) {
    const tr = el(
      "tr",
      { class: `clickable${rule.id === editing ? " selected" : ""}`, dataset: { id: rule.id } },
      // The name people know it by (given in the editor or departments.yaml), with the id the API uses.
      (rule.name || ruleName(rule.id)) === rule.id
        ? el("td", { class: "rule-name", text: rule.id })
        : el(
            "td",
            { class: "rule-name" },
            el("div", { text: rule.name || ruleName(rule.id) }),
            el("div", { class: "rule-id", text: rule.id }),
          ),
      el("td", { text: deptNames.get(rule.department) || rule.department }),
      el("td", {}, el("span", { class: `sev sev-${rule.severity}`, text: SEVERITIES[rule.severity] || rule.severity })),
      el("td", { class: "expr", text: ruleText(rule) }),
    );
    if (!readOnly) tr.addEventListener("click", () => edit(rule));
    body.append(tr);
  }
}

async function loadRules() {
  try {
    const data = await api("/api/v1/rules");
    rules = (data && data.results) || [];
  } catch (err) {
    toast(`规则加载失败：${err.message}`, "error");
  }
  renderList();
}

function edit(rule) {
  editing = rule ? rule.id : null;
  $("rule-form-title").textContent = rule ? `修改规则 ${rule.id}` : "新建规则";
  $("r-id").value = rule ? rule.id : "";
  $("r-id").readOnly = Boolean(rule);
  $("r-name").value = rule ? rule.name || "" : "";
  if (rule) {
    $("r-department").value = rule.department;
    $("r-severity").value = rule.severity;
  }
  $("r-expr").value = rule ? rule.expr || "" : "";
  $("r-delete").classList.toggle("hidden", !rule);
  $("r-error").textContent = "";
  clear($("r-backtest-result"));
  if (rule && !rule.expr && rule.structured) $("r-error").textContent = "此规则为结构化写法（地域词+主体词+事件词），可改写为表达式后保存。";
  renderList();
  scheduleTest();
}

// The expression with the character at the error position marked (positions count code points).
function showParseError(expr, detail) {
  const box = $("r-parse-error");
  clear(box);
  if (!detail) {
    box.classList.add("hidden");
    return;
  }
  const chars = Array.from(expr);
  const pos = Math.max(0, Math.min(Number(detail.position ?? chars.length), chars.length));
  box.append(
    el("span", { class: "msg", text: `第 ${pos + 1} 个字符处有误：${detail.message || ""}` }),
    "\n",
    chars.slice(0, pos).join(""),
    el("mark", { class: "err", text: chars[pos] ?? " " }),
    chars.slice(pos + 1).join(""),
  );
  box.classList.remove("hidden");
}

function parseDetail(err) {
  if (err instanceof ApiError && err.status === 422 && err.detail && typeof err.detail === "object" && !Array.isArray(err.detail)) {
    return err.detail;
  }
  return null;
}

function scheduleTest() {
  clearTimeout(testTimer);
  testTimer = setTimeout(runTest, 250);
}

async function runTest() {
  const expr = $("r-expr").value;
  const text = $("r-sample").value;
  const result = $("r-sample-result");
  const seq = ++testSeq;
  if (!expr.trim()) {
    showParseError(expr, null);
    clear(result);
    return;
  }
  try {
    const answer = await post("/api/v1/rules/test", { expr, text });
    if (seq !== testSeq) return; // a newer keystroke already asked
    showParseError(expr, null);
    clear(result);
    if (text) {
      result.append(
        el("p", { class: answer.matched ? "matched" : "unmatched", text: answer.matched ? "✔ 命中" : "✘ 未命中" }),
        el("div", { class: "sample-text" }, highlighted(text, answer.highlights)),
      );
    }
  } catch (err) {
    if (seq !== testSeq) return;
    const detail = parseDetail(err);
    if (detail) showParseError(expr, detail);
    else toast(`测试失败：${err.message}`, "error");
    clear(result);
  }
}

async function backtest() {
  const expr = $("r-expr").value;
  const box = $("r-backtest-result");
  clear(box);
  if (!expr.trim()) return;
  const button = $("r-backtest");
  button.disabled = true;
  box.append(el("p", { class: "muted", text: "正在用近 7 天条目测试…" }));
  try {
    const answer = await post("/api/v1/rules/test-recent", { expr, days: 7 });
    clear(box);
    const hits = answer.items || [];
    box.append(el("p", { class: "summary", text: `近 7 天共 ${answer.scanned} 条条目，命中${answer.matched_estimated ? "约 " : " "}${answer.matched} 条` }));
    if (answer.notice) box.append(el("p", { class: "error", text: answer.notice }));
    const list = el("ol", { class: "hits" });
    for (const hit of hits.slice(0, 100)) {
      const inTitle = (hit.highlights || []).filter((h) => h.field === "title");
      list.append(
        el(
          "li",
          {},
          el("strong", {}, highlighted(hit.title || "（无标题）", inTitle)),
          el("span", { class: "muted", text: ` ${sourceName(hit.source || "")} · ${formatTime(hit.published_at)}` }),
        ),
      );
    }
    box.append(list);
  } catch (err) {
    clear(box);
    const detail = parseDetail(err);
    if (detail) showParseError(expr, detail);
    else box.append(el("p", { class: "error", text: `测试失败：${err.message}` }));
  } finally {
    button.disabled = false;
  }
}

async function save(event) {
  event.preventDefault();
  const id = $("r-id").value.trim();
  const expr = $("r-expr").value.trim();
  $("r-error").textContent = "";
  // The same checks and words as the API (service/rules/api.py RuleCreate), before anything is sent.
  const idProblem = !id
    ? "请填写规则编号"
    : id.length > 64
      ? `规则编号最多 64 个字符（现有 ${id.length} 个）`
      : /^[a-z0-9][a-z0-9_-]*$/.test(id)
        ? ""
        : "规则编号只能包含小写字母、数字、连字符（-）和下划线（_），并以小写字母或数字开头";
  if (idProblem) {
    $("r-error").textContent = idProblem;
    return;
  }
  const name = $("r-name").value.trim();
  if (name.length > 100) {
    $("r-error").textContent = `规则名称最多 100 个字符（现有 ${name.length} 个）`;
    return;
  }
  if (!expr) {
    $("r-error").textContent = "请填写表达式";
    return;
  }
  const body = { id, name: name || null, department: $("r-department").value, severity: $("r-severity").value, expr };
  try {
    if (editing) await api(`/api/v1/rules/${encodeURIComponent(editing)}`, { method: "PUT", body });
    else await post("/api/v1/rules", body);
    toast("规则已保存");
    editing = id;
    await loadRules();
    edit(rules.find((r) => r.id === id) || null);
  } catch (err) {
    const detail = parseDetail(err);
    if (detail && detail.position !== undefined) showParseError(expr, detail);
    $("r-error").textContent = `保存失败：${err.message}`;
  }
}

async function remove() {
  if (!editing || !window.confirm(`确定删除规则 ${editing}？`)) return;
  try {
    await api(`/api/v1/rules/${encodeURIComponent(editing)}`, { method: "DELETE" });
    toast("规则已删除");
    edit(null);
    await loadRules();
  } catch (err) {
    $("r-error").textContent = `删除失败：${err.message}`;
  }
}

$("rf-department").addEventListener("change", renderList);
if (!readOnly) {
  $("r-expr").addEventListener("input", scheduleTest);
  $("r-sample").addEventListener("input", scheduleTest);
  $("rule-new").addEventListener("click", () => edit(null));
  $("r-backtest").addEventListener("click", backtest);
  $("rule-form").addEventListener("submit", save);
  $("r-delete").addEventListener("click", remove);
}
loadRules();
