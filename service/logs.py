"""Logging: loguru for everything, with stdlib (Scrapy, uvicorn, SQLAlchemy) routed through it."""

from __future__ import annotations

import inspect
import logging
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from service.masking import mask_text

if TYPE_CHECKING:
    from loguru import Record

_masker: list[Any] = []


class InterceptHandler(logging.Handler):
    """Send stdlib log records to loguru, keeping the original caller."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def set_masker(mask: Any) -> None:
    """Install the personal-data mask applied to every log message (see service.masking)."""
    _masker[:] = [mask]


def _patch(record: Record) -> None:
    if not _masker:
        return
    mask = _masker[0]
    message = record["message"]
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        # Exception texts quote crawled data (ValueError(f"bad date in {title}")) and sinks would print
        # them unmasked: the traceback joins the message, masked, and the record carries no exception.
        formatted = "".join(traceback.format_exception(exception.type, exception.value, exception.traceback))
        message = f"{message}\n{formatted.rstrip()}"
        record["exception"] = None
    record["message"] = mask(message)
    record["extra"] = {k: mask(v) if isinstance(v, str) else v for k, v in record["extra"].items()}


def setup_logging(
    level: str = "INFO",
    log_dir: Path | None = None,
    file_level: str = "DEBUG",
    rotation: str = "50 MB",
    retention: str = "30 days",
    library_info: bool = False,
) -> None:
    """Readable console output on stderr and, with ``log_dir``, a rotated JSON-lines file there.

    ``library_info`` (``--verbose``) keeps the INFO lines of Alembic and of APScheduler's job runs, which
    otherwise fill the console with a migration report per command and a heartbeat line every 15 s.
    """

    set_masker(mask_text)  # crawled text in log lines must not carry phone or ID numbers to the files
    logger.remove()
    logger.configure(patcher=_patch)
    logger.add(
        sys.stderr,
        level=level.upper(),
        format="<green>{time:YYYY-MM-DD HH:mm:ss}</green> <level>{level: <7}</level> <cyan>{name}</cyan> {message}",
        backtrace=False,
        diagnose=False,
    )
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        logger.add(
            log_dir / "yuqing.jsonl",
            level=file_level.upper(),
            serialize=True,
            rotation=rotation,
            retention=retention,
            enqueue=True,
            backtrace=False,
            diagnose=False,
            encoding="utf-8",
        )
    lowest = min(logger.level(level.upper()).no, logger.level(file_level.upper()).no if log_dir else 100)
    route_stdlib(lowest, library_info)


# Loggers whose records go only through loguru (not also through the root logger's handler).
ROUTED = ("uvicorn", "uvicorn.error", "uvicorn.access", "scrapy", "twisted", "apscheduler", "sqlalchemy")


def route_stdlib(lowest: int = logging.DEBUG, library_info: bool = False) -> None:
    """Send the standard library's log records (Scrapy, uvicorn, SQLAlchemy) through loguru.

    ``lowest``: the level of the most detailed sink. A record below it is dropped by the handler before it is
    formatted: Scrapy logs every request and every scraped item at DEBUG, and passing each to loguru (a frame
    walk, the message with the item's repr) only for loguru to drop it cost a crawl more than its parsing.
    Called again after Scrapy has reset its loggers.
    """
    logging.basicConfig(handlers=[InterceptHandler(lowest)], level=0, force=True)
    for name in ROUTED:
        std = logging.getLogger(name)
        std.handlers = [InterceptHandler(lowest)]
        std.propagate = False
    # SQLAlchemy's INFO is every statement; keep it for echo=True only.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.INFO)
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    chatty = logging.INFO if library_info else logging.WARNING
    logging.getLogger("alembic").setLevel(chatty)
    logging.getLogger("apscheduler.executors").setLevel(chatty)
    # "Added job ... to job store" per job at every start: English library lines an office log reader
    # cannot use; the product logs its own line (with the job count) when the scheduler starts.
    logging.getLogger("apscheduler.scheduler").setLevel(chatty)
