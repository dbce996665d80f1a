// On every page: the logout button.
import { post } from "./api.js";
import { toast } from "./dom.js";

const logout = document.getElementById("logout");
if (logout) {
  logout.addEventListener("click", async () => {
    try {
      await post("/api/v1/auth/logout", undefined, { redirectOn401: false });
    } catch (err) {
      if (err.status !== 401) {
        toast(`退出失败：${err.message}`, "error");
        return;
      }
    }
    location.assign("/login");
  });
}
