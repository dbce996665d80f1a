"""Everything a department user can fetch, and the JSON-lines log, scanned for unmasked personal data.

The crawled work order carries a mobile number and an 18-digit ID number. No answer a department user
gets (JSON, CSV, every cell of the XLSX) and no line of the log file may contain them in the clear; an
admin still sees the original.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from loguru import logger

from service import clock
from service.logs import setup_logging
from tests.item_stores import on_both_item_stores
from tests.security.conftest import World

PHONE = "13812345678"
SECOND_PHONE = "19987654321"
ID_NUMBER = "11010119900307123X"
TITLE = f"化工厂排污扰民，联系电话{PHONE}"
CONTENT = f"化工厂夜间排污，举报人身份证{ID_NUMBER}，备用手机 {SECOND_PHONE}，请回电。"
# Not glued to digits, nor to Latin letters: item ids are hex digests ("…a13427416535b…" is no phone),
# and service.masking documents the same boundary.
MOBILE_RE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
ID_RE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def leaks(text: str) -> list[str]:
    """Unmasked mobile and ID numbers in ``text``."""
    return MOBILE_RE.findall(text) + ID_RE.findall(text)


@pytest.fixture
def log_file(world: World) -> Iterator[Path]:
    """The product's logging set up as ``yuqing`` sets it up, writing data/logs/yuqing.jsonl."""
    log_dir = world.client.app.state.ctx.settings.data_path("logs")
    setup_logging("WARNING", log_dir=log_dir)
    yield log_dir / "yuqing.jsonl"
    logger.remove()
    logger.add(sys.stderr)


def _xlsx_text(content: bytes) -> str:
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return "\n".join(
        str(cell) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for cell in row if cell
    )


def _department_view(world: World, ticket_id: int) -> dict[str, str]:
    """Every body the env department user can get that could show the work order."""
    env = world.headers("env1")
    get = world.client.get
    today = clock.to_local(clock.now()).date().isoformat()  # the export's days are Beijing days
    acted = world.client.post(
        f"/api/v1/tickets/{ticket_id}/actions", json={"action": "acknowledge", "note": f"已联系{PHONE}"}, headers=env
    )
    assert acted.status_code == 200, acted.text
    bodies = {
        "action": acted,
        "tickets": get("/api/v1/tickets", headers=env),
        "ticket": get(f"/api/v1/tickets/{ticket_id}", headers=env),
        "alerts": get("/api/v1/alerts", headers=env),
        "stats": get("/api/v1/stats", headers=env),
        "rules": get("/api/v1/rules", headers=env),
        "me": get("/api/v1/auth/me", headers=env),
        "csv": get("/api/v1/ledger/export", params={"from": today, "to": today, "format": "csv"}, headers=env),
        "xlsx": get("/api/v1/ledger/export", params={"from": today, "to": today, "format": "xlsx"}, headers=env),
    }
    for name, response in bodies.items():
        assert response.status_code == 200, f"{name}: {response.text}"
    texts = {name: r.text for name, r in bodies.items() if name != "xlsx"}
    texts["xlsx"] = _xlsx_text(bodies["xlsx"].content)
    return texts


@on_both_item_stores
def test_department_user_never_gets_personal_data(world: World) -> None:
    ticket_id = world.new_ticket("env", title=TITLE, content=CONTENT)
    texts = _department_view(world, ticket_id)
    # The scan is not vacuous: the work order is in each place that lists tickets, masked.
    for name in ("tickets", "ticket", "alerts", "csv", "xlsx"):
        assert "138****5678" in texts[name], name
    assert "110101********123X" in texts["ticket"]
    assert list(csv.reader(io.StringIO(texts["csv"].lstrip("\ufeff"))))  # a real CSV came back
    found = {name: leaks(text) for name, text in texts.items() if leaks(text)}
    assert not found, f"unmasked personal data reached a department user: {found}"


@on_both_item_stores
def test_admin_sees_the_original(world: World) -> None:
    ticket_id = world.new_ticket("env", title=TITLE, content=CONTENT)
    body = world.client.get(f"/api/v1/tickets/{ticket_id}", headers=world.headers("admin1")).text
    assert PHONE in body
    assert ID_NUMBER in body
    assert SECOND_PHONE in body


def test_log_file_holds_no_personal_data(world: World, log_file: Path) -> None:
    """Crawled text reaches the log through loguru, through stdlib loggers (Scrapy) and in exceptions."""
    world.new_ticket("env", title=TITLE, content=CONTENT)
    logger.warning("item could not be parsed: {} {}", TITLE, CONTENT)
    logging.getLogger("crawlers.pipelines").warning("dropped item %s: %s", TITLE, CONTENT)
    try:
        raise ValueError(f"bad date in {TITLE} / {CONTENT}")
    except ValueError:
        logger.exception("normalizing failed")
        logging.getLogger("scrapy.core.scraper").exception("Error processing item")
    logger.complete()
    written = log_file.read_text(encoding="utf-8")
    assert written.count("\n") >= 4
    assert "138****5678" in written  # the lines are there, masked
    assert "ValueError: bad date in 化工厂排污扰民，联系电话138****5678" in written  # tracebacks too
    assert not leaks(written), f"unmasked personal data in {log_file.name}: {leaks(written)}"
