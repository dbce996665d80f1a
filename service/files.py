"""Files shared between processes: one lock and one atomic write for the whole product.

The crawl runs in its own process beside the service, so the spool, the source-health file and the
API-added sources are read and rewritten from two processes at once. ``file_lock`` serialises such
read-modify-write sequences (the ``filelock`` package: ``flock`` on POSIX, ``msvcrt`` on Windows);
``atomic_path`` makes sure a reader sees the old file or the new one, never half of either.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock


@contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created with its folder when missing) across processes."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path):
        yield


@contextmanager
def atomic_path(path: Path, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it replaces ``path``.

    The temporary file is hidden and ends in ``.tmp`` (so globs for the real files never pick it up), and
    it is removed on error, so an interrupted write leaves the previous file as it was. ``durable``
    flushes the data to disk before the rename, for files whose loss after a power cut would lose data
    (the spool).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that readers never see a partial file."""
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_text(text, encoding="utf-8")
