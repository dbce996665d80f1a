"""Oversight of the people who use the service: account administration (admins, /api/v1/users and the
``yuqing user`` commands) and reading the audit log (auditors, /api/v1/audit).

It stands above sign-in (service.auth), which itself stands on the accounts (service.users) and writes
the audit log (service.audit): the screens that govern those two are the ones that need sign-in's
authorisation, so they live here and every import points one way, down.
"""
