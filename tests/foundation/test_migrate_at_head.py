"""A command on an up-to-date database does not run Alembic again; one a revision behind is still upgraded."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from service.db import Database, alembic_config, database_heads, script_heads
from tests.foundation.conftest import run_cli


def _scripts(db: Database) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(db.engine))


def test_the_heads_read_from_the_revision_files_are_alembics_own() -> None:
    db = Database("sqlite://")
    assert script_heads() == set(_scripts(db).get_heads())
    db.dispose()


def test_a_database_one_revision_behind_is_upgraded_and_one_at_head_is_left_alone(
    tmp_path: Path, empty_database_url: str
) -> None:
    database_url = empty_database_url
    # Every branch at its newest revision but one, which stops one short of it.
    db = Database(database_url)
    scripts = _scripts(db)
    behind = next(
        rev
        for rev in sorted(script_heads())
        if isinstance(scripts.get_revision(rev).down_revision, str)  # not a merge point
    )
    parent = scripts.get_revision(behind).down_revision
    assert isinstance(parent, str)
    cfg = alembic_config(db.engine)
    for target in [*(sorted(script_heads() - {behind})), parent]:
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, target)
    assert behind not in database_heads(db.engine)
    assert database_heads(db.engine) != script_heads()

    env = {"YUQING_DATA_DIR": str(tmp_path / "data"), "YUQING_DATABASE__URL": database_url}
    (tmp_path / "config").mkdir()
    # --verbose keeps Alembic's INFO lines: "Context impl ..." whenever an upgrade runs, even one with nothing to do.
    upgraded = run_cli("--config", str(tmp_path / "config"), "--verbose", "user", "list", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Context impl" in upgraded.stderr
    assert f"Running upgrade {parent} -> {behind}" in upgraded.stderr
    assert database_heads(db.engine) == script_heads()

    again = run_cli("--config", str(tmp_path / "config"), "--verbose", "user", "list", env=env)
    assert again.returncode == 0, again.stderr
    assert "还没有用户" in again.stdout  # the command itself ran on the database
    assert "Context impl" not in again.stderr
    assert "Running upgrade" not in again.stderr
    assert database_heads(db.engine) == script_heads()
    db.dispose()
