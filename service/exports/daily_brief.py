"""The daily brief (日报): per department, yesterday's new tickets, open overdue ones and published responses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from service.clock import SHANGHAI
from service.exports.ledger_rows import LedgerRow
from service.masking import mask_text
from service.vocabulary import STAGE_LABELS

# A brief is read on a phone: list a few cases per department, count the rest.
LISTED = 5


@dataclass
class DepartmentDay:
    """One department's day."""

    department: str
    department_name: str
    new: int = 0
    overdue: int = 0
    responded: int = 0
    overdue_cases: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)


@dataclass
class DailyBrief:
    """The brief of ``day``; ``text()`` renders it for a notification channel."""

    day: date
    departments: list[DepartmentDay]

    @property
    def new(self) -> int:
        return sum(d.new for d in self.departments)

    @property
    def overdue(self) -> int:
        return sum(d.overdue for d in self.departments)

    @property
    def responded(self) -> int:
        return sum(d.responded for d in self.departments)

    @property
    def subject(self) -> str:
        return f"舆情回应日报（{self.day.year}年{self.day.month}月{self.day.day}日）"

    def text(self) -> str:
        """The brief as plain Chinese text."""
        lines = [f"{self.subject}：新增工单 {self.new} 件，超期未办 {self.overdue} 件，发布回应 {self.responded} 件。"]
        if not self.departments:
            lines.append("昨日无新增工单、无超期工单、无回应发布。")
        for dept in self.departments:
            lines.append("")
            lines.append(
                f"【{dept.department_name}】新增 {dept.new} 件，"
                f"超期未办 {dept.overdue} 件，发布回应 {dept.responded} 件"
            )
            lines.extend(f"  超期：{case}" for case in dept.overdue_cases)
            if dept.overdue > len(dept.overdue_cases):
                lines.append(f"  ……另有 {dept.overdue - len(dept.overdue_cases)} 件超期")
            lines.extend(f"  回应：{case}" for case in dept.responses)
            if dept.responded > len(dept.responses):
                lines.append(f"  ……另有 {dept.responded - len(dept.responses)} 件回应")
        return "\n".join(lines)


def build_daily_brief(rows: Iterable[LedgerRow], day: date, *, zone: ZoneInfo = SHANGHAI) -> DailyBrief:
    """Count ``rows`` (see ledger_rows.rows_for_brief) into the brief of local day ``day``; titles masked."""
    by_department: dict[str, DepartmentDay] = {}
    for row in rows:
        new = row.discovered_at.astimezone(zone).date() == day
        responded = row.responded_at is not None and row.responded_at.astimezone(zone).date() == day
        late = row.open_overdue_stages
        if not (new or responded or late):
            continue
        dept = by_department.get(row.department)
        if dept is None:
            dept = by_department[row.department] = DepartmentDay(row.department, row.department_name)
        title = mask_text(row.title)
        dept.new += new
        if late:
            dept.overdue += 1
            if len(dept.overdue_cases) < LISTED:
                stages = "、".join(STAGE_LABELS[s] for s in late)
                dept.overdue_cases.append(f"#{row.ticket_id} {title}（{stages}超期）")
        if responded:
            dept.responded += 1
            if len(dept.responses) < LISTED:
                where = f" {mask_text(row.response_url)}" if row.response_url else ""
                dept.responses.append(f"#{row.ticket_id} {title}{where}")
    departments = sorted(by_department.values(), key=lambda d: (-d.overdue, -d.new, d.department_name))
    return DailyBrief(day, departments)
