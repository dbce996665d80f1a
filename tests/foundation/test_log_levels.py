"""Library records (Scrapy, SQLAlchemy, uvicorn) go through loguru; those no sink takes are dropped unformatted."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from service.logs import ROUTED, setup_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """The stdlib handlers and loguru's sinks as they were before the test."""
    root = logging.getLogger()
    saved = [(root, list(root.handlers), root.propagate)] + [
        (logging.getLogger(n), list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in ROUTED
    ]
    yield
    logger.remove()
    logger.add(sys.stderr, level="INFO")
    for log, handlers, propagate in saved:
        log.handlers = handlers
        log.propagate = propagate


class Counted:
    """An argument that counts how often its log message was built."""

    built = 0

    def __str__(self) -> str:
        Counted.built += 1
        return "{'title': '化工厂夜间异味'}"


def test_a_debug_record_of_scrapy_is_not_formatted_when_no_sink_takes_debug(
    tmp_path: Path, restored_logging: None
) -> None:
    """Scrapy logs every request and every scraped item (its repr) at DEBUG; each went to loguru, which built
    the message only to drop it at the console's INFO: more of a crawl's CPU than parsing its pages."""
    scraper = logging.getLogger("scrapy.core.scraper")
    Counted.built = 0
    setup_logging("INFO")
    scraper.debug("Scraped from <200 http://127.0.0.1/d1.html>\n%s", Counted())
    assert Counted.built == 0
    scraper.info("Crawled %s", Counted())
    assert Counted.built == 1
    # A DEBUG file sink (logging.file_level) takes them: they are still written there.
    setup_logging("INFO", tmp_path, file_level="DEBUG")
    scraper.debug("Scraped from <200 http://127.0.0.1/d1.html>\n%s", Counted())
    logger.complete()
    assert Counted.built == 2
    assert "化工厂夜间异味" in (tmp_path / "yuqing.jsonl").read_text(encoding="utf-8")
