"""Settings: YAML, environment overrides, and start-up errors that name file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config_files import ConfigError
from service.settings import load_settings
from tests.foundation.conftest import run_cli


def test_missing_settings_file_means_defaults(config_dir: Path, data_dir: Path) -> None:
    settings = load_settings(config_dir)
    assert settings.store.backend == "sqlite"
    assert settings.server.port == 8000
    assert settings.data_dir == data_dir
    assert settings.database_url == f"sqlite:///{(data_dir / 'yuqing.db').resolve()}"
    assert settings.scheduler.misfire_grace_time == 300


def test_yaml_values_are_read_and_environment_wins(
    config_dir: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (config_dir / "settings.yaml").write_text(
        "server:\n  port: 9001\nstore:\n  backend: elasticsearch\n  elasticsearch:\n    hosts: ['http://es:9200']\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("YUQING_SERVER__PORT", "9002")
    monkeypatch.setenv("YUQING_STORE__ELASTICSEARCH__USERNAME", "elastic")
    settings = load_settings(config_dir)
    assert settings.server.port == 9002
    assert settings.store.backend == "elasticsearch"
    # A nested override merges with the file instead of replacing the whole section.
    assert settings.store.elasticsearch.hosts == ["http://es:9200"]
    assert settings.store.elasticsearch.username == "elastic"


def test_config_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    cfg = tmp_path / "elsewhere"
    cfg.mkdir()
    (cfg / "settings.yaml").write_text("server:\n  port: 8123\n", encoding="utf-8")
    monkeypatch.setenv("YUQING_CONFIG_DIR", str(cfg))
    assert load_settings().server.port == 8123


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "store:\n  backend: mongo\n",
            "settings.yaml: store.backend: Input should be 'sqlite' or 'elasticsearch'",
        ),
        ("server:\n  prot: 1\n", "settings.yaml: server.prot: unknown key"),
        ("server:\n  port: [1\n", "settings.yaml: line 3, column 1: not valid YAML"),
        (
            "scheduler:\n  crawl_niceness: 0\nserver:\n  port: 8123\nscheduler:\n  timezone: UTC\n",
            "settings.yaml: line 5, column 1: not valid YAML: duplicate key 'scheduler'",
        ),
        (
            "database:\n  url: mysql://u@h/db\n",
            "settings.yaml: database.url: unsupported database URL scheme 'mysql'",
        ),
        ("timezone: Mars/Olympus\n", "settings.yaml: timezone: unknown time zone 'Mars/Olympus'"),
        ("- a list\n", "settings.yaml: the top level must be a mapping"),
    ],
)
def test_broken_settings_are_reported_precisely(config_dir: Path, data_dir: Path, text: str, message: str) -> None:
    (config_dir / "settings.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_dir)
    assert str(caught.value).startswith(message)


def test_bad_environment_value_names_the_variable(
    config_dir: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YUQING_SERVER__PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"^YUQING_SERVER__PORT: server.port"):
        load_settings(config_dir)


def test_postgres_urls_use_psycopg3(config_dir: Path, data_dir: Path) -> None:
    (config_dir / "settings.yaml").write_text("database:\n  url: postgres://u:p@db/yuqing\n", encoding="utf-8")
    assert load_settings(config_dir).database_url == "postgresql+psycopg://u:p@db/yuqing"


def test_cli_exits_2_with_one_line_and_writes_nothing(config_dir: Path, data_dir: Path) -> None:
    (config_dir / "settings.yaml").write_text("store:\n  backend: mongo\n", encoding="utf-8")
    result = run_cli("--config", str(config_dir), "init")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("yuqing: settings.yaml: store.backend:")
    assert not data_dir.exists()
