"""Per-department aggregates of the ledger, computed in one streaming pass (constant memory per department).

A stage's on-time rate is met-in-time / (met + unmet-past-due), the same rule as the statistics API:
stages still running within their deadline are not decided yet and count in neither part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.exports.ledger_rows import LedgerRow
from service.ledger.timing import elapsed
from service.vocabulary import STAGES


@dataclass
class StageTally:
    """On-time counting of one stage."""

    on_time: int = 0
    decided: int = 0

    def add(self, met: bool, overdue: bool) -> None:
        if met or overdue:
            self.decided += 1
            if met and not overdue:
                self.on_time += 1

    @property
    def rate(self) -> float | None:
        """on_time / decided, or None when nothing is decided yet."""
        return self.on_time / self.decided if self.decided else None


@dataclass
class DepartmentSummary:
    """The figures of one department (or of all, for the total line)."""

    department: str
    department_name: str
    tickets: int = 0
    overdue: int = 0  # tickets with at least one stage overdue
    escalated: int = 0
    stages: dict[str, StageTally] = field(default_factory=lambda: {s: StageTally() for s in STAGES})
    responded: int = 0
    respond_seconds: float = 0.0

    def add(self, row: LedgerRow) -> None:
        """Count ``row`` in."""
        self.tickets += 1
        any_late = False
        for stage in STAGES:
            late = row.overdue(stage)
            any_late = any_late or late
            self.stages[stage].add(row.met_at(stage) is not None, late)
        self.overdue += any_late
        self.escalated += row.escalated
        if row.responded_at is not None:
            self.responded += 1
            # A reply already public when the item was found counts as 0 hours, never negative.
            self.respond_seconds += elapsed(row.discovered_at, row.responded_at).total_seconds()

    def rate(self, stage: str) -> float | None:
        """On-time rate of ``stage``."""
        return self.stages[stage].rate

    @property
    def avg_respond_hours(self) -> float | None:
        """Average hours from discovery to the published response, over responded tickets."""
        return self.respond_seconds / 3600 / self.responded if self.responded else None


class LedgerSummary:
    """Aggregates rows as they stream past; ``departments()`` and ``total`` read the result."""

    def __init__(self) -> None:
        self._by_department: dict[str, DepartmentSummary] = {}
        self.total = DepartmentSummary("", "合计")

    def add(self, row: LedgerRow) -> None:
        """Count ``row`` in its department and in the total."""
        dept = self._by_department.get(row.department)
        if dept is None:
            dept = self._by_department[row.department] = DepartmentSummary(row.department, row.department_name)
        dept.add(row)
        self.total.add(row)

    def departments(self) -> list[DepartmentSummary]:
        """One summary per department, most tickets first, then by name."""
        return sorted(self._by_department.values(), key=lambda d: (-d.tickets, d.department_name, d.department))

    @property
    def rows(self) -> int:
        return self.total.tickets
