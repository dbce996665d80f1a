// On every page: the logout button, a banner while monitoring is not running (from /healthz), and the
// column names every table cell carries for the phone layout.
import { post } from "./api.js";
import { clear, el, toast } from "./dom.js";
import { formatTime } from "./format.js";

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

// /healthz answers 503 with the same JSON when degraded, so it is read with fetch, not api().
const banner = document.getElementById("monitor-banner");
const BANNER_SECONDS = 30;

async function refreshBanner() {
  let body;
  try {
    const response = await fetch("/healthz", { credentials: "same-origin", cache: "no-store" });
    body = await response.json();
  } catch (err) {
    body = { status: "degraded", reasons: ["无法连接服务，监测状态未知"], jobs: [] };
  }
  clear(banner);
  if (body.status === "ok") {
    banner.classList.add("hidden");
    return;
  }
  const lines = (body.jobs || [])
    .filter((job) => job.status === "stalled")
    .map((job) => {
      const error = job.last_error ? `；最近错误：${job.last_error}` : "";
      return `「${job.name}」最近一次成功：${job.last_success ? formatTime(job.last_success) : "从未"}${error}`;
    });
  const others = (body.reasons || []).filter((reason) => !reason.startsWith("任务「"));
  banner.append(el("strong", { text: "监测异常：新的舆情、预警或时限提醒可能无法及时发现或发出。" }));
  for (const text of [...others, ...lines]) banner.append(el("div", { text }));
  banner.classList.remove("hidden");
}

if (banner) {
  refreshBanner();
  setInterval(refreshBanner, BANNER_SECONDS * 1000);
}

// On a phone each row is a card and each cell shows its column name (CSS reads data-label), so the
// tables' scripts need not know about the layout: cells are labelled whenever rows are added.
function labelCells(table) {
  const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const tr of table.querySelectorAll("tbody tr")) {
    [...tr.children].forEach((td, i) => {
      if (!td.hasAttribute("data-label") && !td.hasAttribute("colspan")) td.setAttribute("data-label", names[i] || "");
    });
  }
}

for (const table of document.querySelectorAll("table.grid")) {
  labelCells(table);
  const body = table.tBodies[0];
  if (body) new MutationObserver(() => labelCells(table)).observe(body, { childList: true });
}
