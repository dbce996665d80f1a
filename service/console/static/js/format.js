// Display conventions: Asia/Shanghai time, Chinese labels.

export const CHANNELS = { hotline: "12345热线", mailbox: "领导信箱", media: "媒体" };
export const SEVERITIES = { critical: "特别重大", major: "重大", normal: "较大", minor: "一般" };
export const STATUSES = {
  new: "待签收",
  acknowledged: "已签收",
  handled: "已办理",
  responded: "已回应",
  closed: "已办结",
  returned: "已退件",
};
export const STAGES = { acknowledge: "签收", handle: "办理", respond: "回应" };
export const ACTIONS = {
  acknowledge: "签收",
  handle: "办理",
  respond: "回应",
  close: "办结",
  reassign: "改派",
  escalate: "督办",
  reopen: "重新打开",
  return: "退件",
  request_extension: "申请延期",
  approve_extension: "批准延期",
  reject_extension: "驳回延期",
  change_severity: "调整级别",
  create: "创建",
  assign: "分派",
};

const dateTime = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai",
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});
const dayOnly = new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit" });

// Who did it: a user name, or the product itself (system:matching …), said in words.
const SYSTEM_ACTORS = {
  "system:matching": "系统（关键词匹配）",
  "system:sla": "系统（时限监控）",
  "system:crawler": "系统（发现公开答复）",
};
export function actorName(actor) {
  if (!actor) return "";
  if (SYSTEM_ACTORS[actor]) return SYSTEM_ACTORS[actor];
  return actor.startsWith("system:") ? "系统" : actor;
}

export function formatTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateTime.format(d);
}

// YYYY-MM-DD of an instant in Asia/Shanghai.
export function shanghaiDay(date) {
  return dayOnly.format(date);
}

export function daysAgo(n) {
  return shanghaiDay(new Date(Date.now() - n * 86400000));
}

// "剩 2天3小时" / "超期 45分钟": the sign tells which.
export function formatLeft(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const late = seconds < 0;
  let s = Math.abs(Math.round(seconds));
  const days = Math.floor(s / 86400);
  s -= days * 86400;
  const hours = Math.floor(s / 3600);
  s -= hours * 3600;
  const minutes = Math.floor(s / 60);
  let text;
  if (days) text = `${days}天${hours}小时`;
  else if (hours) text = `${hours}小时${minutes}分钟`;
  else text = `${minutes}分钟`;
  return late ? `超期 ${text}` : `剩 ${text}`;
}

// The stage a ticket waits on, from its status and stage facts.
export function currentStage(ticket) {
  if (!ticket || ticket.status === "closed" || ticket.status === "returned") return null;
  if (ticket.status === "new") return "acknowledge";
  const met = ticket.met || {};
  const open = ["handle", "respond"].filter((s) => !met[s]);
  if (!open.length) return null;
  const due = ticket.deadlines || {};
  open.sort((a, b) => new Date(due[a]) - new Date(due[b]));
  return open[0];
}

// Seconds left for the current stage: the API's time_left when it gives one, else from the deadline.
export function secondsLeft(ticket, stage) {
  const given = ticket.time_left;
  if (typeof given === "number") return given;
  if (given && typeof given === "object") {
    const value = given.seconds ?? given[stage] ?? given.remaining_seconds;
    if (typeof value === "number") return value;
  }
  const due = stage && ticket.deadlines && ticket.deadlines[stage];
  return due ? (new Date(due) - Date.now()) / 1000 : null;
}

// A stage whose deadline counts in working days is said in working days, in the API's words
// ("剩 2 个工作日", "今日 23:59 到期", "已超期 1 个工作日": the server knows the holiday calendar);
// null for a stage counted in natural time.
export function workdaysLeft(ticket, stage) {
  const days = ticket.time_left_workdays && ticket.time_left_workdays[stage];
  if (days === null || days === undefined) return null;
  return (ticket.time_left_text && ticket.time_left_text[stage]) || null;
}

// What is left of a stage, in the unit its deadline counts in.
export function leftText(ticket, stage) {
  return workdaysLeft(ticket, stage) ?? formatLeft(secondsLeft(ticket, stage));
}

export function isOverdue(ticket) {
  const overdue = ticket.overdue || {};
  return Object.values(overdue).some(Boolean);
}
