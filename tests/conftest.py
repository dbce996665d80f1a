"""Shared fixtures. Each block below belongs to one area; add yours as a block of its own."""

from __future__ import annotations

# -- real test servers (Elasticsearch, PostgreSQL): tests/servers/fixtures.py ---------------------------
# es_server, es_settings, postgres_url. Missing Java/Maven/PostgreSQL: skip locally, fail under CI=true.
pytest_plugins = ["tests.servers.fixtures", "tests.db_fixtures"]
# -- end of real test servers --------------------------------------------------------------------------

# -- accounts and audit: tests/auth/fixtures.py ----------------------------------------------------------
# frozen, app_settings, client (the app on database_url), accounts (add users, sign in).
pytest_plugins = [*pytest_plugins, "tests.auth.fixtures"]
# -- end of accounts and audit ---------------------------------------------------------------------------
