"""Matching tests run the real app on a fresh database with a small departments.yaml, on both item stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings
from tests.auth.fixtures import Accounts, accounts, app_settings, client, frozen  # noqa: F401 - fixtures
from tests.item_stores import backends, item_store, ledger_database_kind  # noqa: F401 - fixtures: both item stores

DEPARTMENTS = """
departments:
  - id: env
    name: 市生态环境局
    rules:
      - id: env-pollution
        name: 化工厂排污异味
        expr: '(排污 OR 异味) AND 化工厂 AND NOT 招聘'
        severity: major
      - id: env-noise
        expr: '噪音'
        severity: minor
  - id: water
    name: 市水务局
    rules:
      - id: water-flood
        regions: [河西区]
        events: [积水, 内涝]
        severity: normal
"""


@pytest.fixture
def app_settings(app_settings: Settings) -> Settings:  # noqa: F811 - extends the auth fixture
    (Path(app_settings.config_dir) / "departments.yaml").write_text(DEPARTMENTS, encoding="utf-8")
    return app_settings


__all__ = ["Accounts"]
