// Choosing a new password (required after an administrator's reset); then on to the user's home page.
import { api, post } from "./api.js";
import { $ } from "./dom.js";

$("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("p-error");
  error.textContent = "";
  const current = $("p-current").value;
  const next = $("p-new").value;
  if (!current || !next) {
    error.textContent = "请填写当前密码和新密码";
    return;
  }
  if (next !== $("p-again").value) {
    error.textContent = "两次输入的新密码不一致";
    return;
  }
  $("p-submit").disabled = true;
  try {
    await post("/api/v1/auth/password", { current_password: current, new_password: next });
    const me = await api("/api/v1/auth/me");
    location.assign((me && me.home) || "/");
  } catch (err) {
    error.textContent = err.message;
    $("p-submit").disabled = false;
  }
});
