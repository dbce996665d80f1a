"""The caller of a request, as every layer sees it: the audit log, the accounts, sign-in and each domain.

Part of the foundation (it needs only the vocabulary), so the packages that decide who is calling
(service.auth) and those that record or administer callers (service.audit, service.users) share it
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.vocabulary import Role


@dataclass(frozen=True)
class Principal:
    """An authenticated user. ``department`` is set for (and only for) the department role."""

    user_id: int
    username: str
    role: Role
    department: str | None = None
    address: str | None = None  # client address, for the audit log
    # After an administrator's reset: only signing out and choosing a new password are allowed.
    must_change_password: bool = False

    @property
    def sees_everything(self) -> bool:
        """Officers, leaders and admins read across departments; department users see their own only."""
        return self.role in ("admin", "officer", "leader")

    @property
    def sees_personal_data(self) -> bool:
        """Only admins see unmasked phone, ID and bank card numbers."""
        return self.role == "admin"

    def may_see_department(self, department: str | None) -> bool:
        if self.sees_everything:
            return True
        return self.role == "department" and department is not None and department == self.department
