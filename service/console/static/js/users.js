// User administration (admins only): list, create, change role/department, disable/enable, unlock, reset, delete.
import { api, post } from "./api.js";
import { $, clear, departments, el, toast } from "./dom.js";
import { formatTime } from "./format.js";

const deptNames = departments();
let editing = null; // username whose role is being changed, null when adding

function stateText(u) {
  const parts = [u.active ? "正常" : "已停用"];
  if (u.locked) parts.push(`锁定至 ${formatTime(u.locked_until)}`);
  if (u.must_change_password) parts.push("须修改密码");
  return parts.join("，");
}

function showResult(answer, text) {
  const box = $("u-result");
  $("u-result-text").textContent = text;
  $("u-temp-password").textContent = answer.temporary_password ? `临时密码：${answer.temporary_password}` : "";
  const qr = answer.totp_qr;
  $("u-qr").classList.toggle("hidden", !qr);
  if (qr && qr.startsWith("data:image/svg+xml")) $("u-qr-img").src = qr;
  box.classList.toggle("hidden", !answer.temporary_password && !qr);
}

async function act(label, call, after) {
  try {
    const answer = await call();
    toast(`${label}成功`);
    if (answer && (answer.temporary_password || answer.totp_qr)) showResult(answer, after || `${label}成功`);
  } catch (err) {
    toast(`${label}失败：${err.message}`, "error");
  }
  load();
}

const path = (u) => `/api/v1/users/${encodeURIComponent(u.username)}`;

function actions(u) {
  const me = document.body.dataset.username;
  const buttons = [];
  const button = (text, handler, cls = "link") => {
    const b = el("button", { type: "button", class: cls, text });
    b.addEventListener("click", handler);
    buttons.push(b);
  };
  button("改角色", () => startEdit(u));
  if (u.username !== me) {
    if (u.active) button("停用", () => act("停用", () => api(path(u), { method: "PATCH", body: { active: false } })));
    else button("启用", () => act("启用", () => api(path(u), { method: "PATCH", body: { active: true } })));
  }
  if (u.locked) button("解锁", () => act("解锁", () => post(`${path(u)}/unlock`)));
  button("重置密码", () => {
    if (!window.confirm(`重置 ${u.username} 的密码？对方下次登录时须修改密码。`)) return;
    act("重置密码", () => post(`${path(u)}/reset-password`, {}), `已重置 ${u.username} 的密码`);
  });
  if (u.username !== me) {
    button(
      "删除",
      () => {
        if (!window.confirm(`删除用户 ${u.username}？此操作不能撤销（审计日志保留其记录）。`)) return;
        act("删除", () => api(path(u), { method: "DELETE" }));
      },
      "link danger-link",
    );
  }
  return el("div", { class: "row-actions" }, buttons);
}

function render(users) {
  const body = $("user-rows");
  clear(body);
  for (const u of users) {
    const dept = u.department ? deptNames.get(u.department) || u.department : "—";
    body.append(
      el(
        "tr",
        { class: u.active ? "" : "inactive", dataset: { username: u.username } },
        el("td", { text: u.username }),
        el("td", { text: u.role_name || u.role }),
        el("td", { text: dept }),
        el("td", { class: u.locked || !u.active ? "late" : "", text: stateText(u) }),
        el("td", {}, actions(u)),
      ),
    );
  }
}

async function load() {
  try {
    const data = await api("/api/v1/users");
    render((data && data.results) || []);
  } catch (err) {
    toast(`用户列表加载失败：${err.message}`, "error");
  }
}

function syncDepartment() {
  $("u-department-label").classList.toggle("hidden", $("u-role").value !== "department");
}

function startEdit(u) {
  editing = u.username;
  $("user-form-title").textContent = `修改 ${u.username} 的角色`;
  $("u-username").value = u.username;
  $("u-username").readOnly = true;
  $("u-role").value = u.role;
  if (u.department) $("u-department").value = u.department;
  $("u-password").closest("label").classList.add("hidden");
  $("u-cancel").classList.remove("hidden");
  $("u-error").textContent = "";
  syncDepartment();
  $("user-form").scrollIntoView({ behavior: "smooth", block: "start" });
}

function resetForm() {
  editing = null;
  $("user-form").reset();
  $("user-form-title").textContent = "新增用户";
  $("u-username").readOnly = false;
  $("u-password").closest("label").classList.remove("hidden");
  $("u-cancel").classList.add("hidden");
  syncDepartment();
}

$("u-role").addEventListener("change", syncDepartment);
$("u-cancel").addEventListener("click", resetForm);
$("user-refresh").addEventListener("click", load);
$("user-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("u-error").textContent = "";
  const role = $("u-role").value;
  const department = role === "department" ? $("u-department").value : null;
  const username = $("u-username").value.trim();
  if (!username) {
    $("u-error").textContent = "请填写用户名";
    return;
  }
  // The API's own refusal would name the field by its code ("请求体字段 username …"): say it in the form's words.
  if (!editing && username.length < 2) {
    $("u-error").textContent = "用户名至少 2 个字符";
    return;
  }
  try {
    let answer;
    if (editing) {
      answer = await api(`/api/v1/users/${encodeURIComponent(editing)}`, { method: "PATCH", body: { role, department } });
      toast(`已修改 ${editing} 的角色`);
      showResult(answer, `${editing} 已成为管理员，须绑定动态口令`);
    } else {
      const password = $("u-password").value || null;
      answer = await post("/api/v1/users", { username, role, department, password });
      toast(`已创建用户 ${username}`);
      showResult(answer, `已创建用户 ${username}`);
    }
    resetForm();
    load();
  } catch (err) {
    $("u-error").textContent = err.message;
  }
});

syncDepartment();
load();
