import { post } from "./api.js";
import { $ } from "./dom.js";

// Only a path of this site: "//host" or "https://host" in ?next= would make the login an open redirect.
function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("login-error");
  const button = $("login-submit");
  error.textContent = "";
  const username = $("username").value.trim();
  const password = $("password").value;
  if (!username || !password) {
    error.textContent = "请输入用户名和密码";
    return;
  }
  button.disabled = true;
  try {
    const body = { username, password };
    const totp = $("totp").value.trim();
    if (totp) body.totp = totp;
    await post("/api/v1/auth/login", body, { redirectOn401: false });
    location.assign(nextPath());
  } catch (err) {
    error.textContent = err.status === 429 ? "尝试次数过多，请稍后再试" : err.message || "登录失败";
    button.disabled = false;
  }
});
