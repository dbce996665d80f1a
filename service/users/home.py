"""The page each role lands on after signing in: always one the role may open."""

from __future__ import annotations

from service.principal import Principal

HOMES = {
    "admin": "/alerts",
    "officer": "/alerts",
    "department": "/tickets",
    "leader": "/dashboard",
    "auditor": "/audit",
}


def home_of(principal: Principal) -> str:
    """The first page: the feed for officers, the queue for departments, the dashboard for leaders,
    the audit log for auditors, and the password form for anyone who must choose a new password."""
    if principal.must_change_password:
        return "/password"
    return HOMES.get(principal.role, "/alerts")
