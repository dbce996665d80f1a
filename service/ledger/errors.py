"""The ledger's refusals, each one HTTP answer (404, 409, 422); the transition table adds 403 and 409."""

from __future__ import annotations


class TicketNotFound(Exception):
    """No such ticket, or one the caller may not see (the API answers 404 either way)."""

    def __init__(self, ticket_id: int) -> None:
        self.ticket_id = ticket_id
        super().__init__(f"工单 {ticket_id} 不存在")


class StaleVersion(Exception):
    """The ticket changed since the caller read it (the API answers 409)."""

    def __init__(self, ticket_id: int, expected: int, current: int | None = None) -> None:
        self.ticket_id = ticket_id
        self.expected = expected
        self.current = current
        now = f"，当前版本为 {current}" if current is not None else ""
        super().__init__(f"工单 {ticket_id} 已被他人修改（提交的版本为 {expected}{now}），请刷新后重试")


class InvalidInput(ValueError):
    """The action's input is incomplete or wrong (the API answers 422); ``field`` names what.

    The message is shown to users as it is (the console prints ``detail.message``), so it is Chinese only;
    programs read the field's code from ``field``.
    """

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(message)
