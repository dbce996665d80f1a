"""Repost tests run on both item stores (the ``store`` fixture of tests/store) and on the whole app."""

from __future__ import annotations

from tests.matching.conftest import app_settings  # noqa: F401 - fixture: the app with a departments.yaml
from tests.store.conftest import frozen_clock, store  # noqa: F401 - fixtures
