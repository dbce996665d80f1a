"""The one file lock and atomic write that the spool, source health, API sources and exports share."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from service.files import atomic_path, file_lock, write_text_atomic

ROUNDS = 40


def _bump(counter: Path, rounds: int) -> None:
    for _ in range(rounds):
        with file_lock(counter.with_suffix(".lock")):
            value = int(counter.read_text()) if counter.exists() else 0
            write_text_atomic(counter, str(value + 1))


def test_two_processes_under_the_lock_lose_no_update(tmp_path: Path) -> None:
    counter = tmp_path / "deep" / "counter.txt"  # the folder does not exist yet
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_bump, args=(counter, ROUNDS)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    assert counter.read_text() == str(2 * ROUNDS)


def test_an_interrupted_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "health.json"
    target.write_text("old", encoding="utf-8")

    def write_then_fail() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half", encoding="utf-8")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["health.json"]


def test_a_durable_write_replaces_the_file_and_its_temporary_is_not_a_spool_file(tmp_path: Path) -> None:
    target = tmp_path / "0001.jsonl"
    with atomic_path(target, durable=True) as tmp:
        assert not tmp.name.endswith(".jsonl")  # the spool replays *.jsonl: a half file must not match
        tmp.write_text('{"id": 1}\n', encoding="utf-8")
    assert target.read_text(encoding="utf-8") == '{"id": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["0001.jsonl"]
