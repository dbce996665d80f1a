"""What a crawl process loads: an SQLite crawl never imports the database layer (SQLAlchemy, Alembic).

Those imports were ~0.5 s CPU of every crawl's start-up. The crawl process returns each source's summary
and the process that started it (which has the database open anyway) records the source's health. Nor does
a crawl import jieba (~0.3 s CPU with the pkg_resources it imports) unless it compares two texts closely
enough to ask for their places, nor dnspython (~0.13 s) unless sources.yaml names its own resolvers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawlers.health import get_health
from crawlers.runner import crawl_sources
from service.rules.config import KEEP_DIR
from tests.crawlers.conftest import FAST_CRAWL, make_settings
from tests.crawlers.site import Site

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

SOURCES = """sources:
  - id: light
    name: 轻量抓取
    channel: hotline
    type: html
    start_urls: ["{base}/light/list.html"]
    interval: 1h
    list: {{items: "ul > li", url: "a::attr(href)"}}
    fields: {{title: h1, content: div.c}}
"""


def _blocker(tmp: Path) -> Path:
    """A directory of packages that refuse to be imported, put ahead of the real ones."""
    for name in ("sqlalchemy", "alembic", "jieba", "dns"):
        package = tmp / "blocked" / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f"raise ImportError('the crawl process imported {name}')\n", "utf-8")
    return tmp / "blocked"


def test_an_sqlite_crawl_runs_without_the_database_layer_and_health_is_still_recorded(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.html(
        "/light/list.html",
        '<html><body><ul><li><a href="d1.html">一</a></li><li><a href="d2.html">二</a></li></ul></body></html>',
    )
    for n, text in ((1, "河西路夜间施工噪音扰民"), (2, "东湖小区停水三天无人处理")):
        site.html(f"/light/d{n}.html", f'<html><body><h1>{text}</h1><div class="c"><p>{text}。</p></div></body></html>')
    settings = make_settings(tmp_path, FAST_CRAWL + SOURCES.format(base=site.base))
    # Only the crawl process sees the blocker: its PYTHONPATH is built from this environment.
    monkeypatch.setenv("PYTHONPATH", str(_blocker(tmp_path)))
    counts = crawl_sources(settings, ["light"], now=NOW, timeout=120)["light"]
    assert counts["new"] == 2
    assert counts["healthy"] is True
    assert counts["consecutive_failures"] == 0
    assert "health_record" not in counts
    assert get_health(settings, "light").last_success_at is not None
    # The folding tables (~0.3 s CPU to build) are kept in the data dir: the next crawl reads them.
    assert len(list(settings.data_path(KEEP_DIR).glob("folding.*.marshal"))) == 1


WARM_HOST_CRAWL = """
import sys
from crawlers.crawl_process import _preload
from service.settings import Settings
_preload()  # what a worker's crawl host imports once, before forking each crawl
before = set(sys.modules)
settings = Settings.model_validate({
    "database": {"url": "postgresql+psycopg://yuqing:secret@127.0.0.1:9/yuqing"},
    "store": {"backend": "elasticsearch", "elasticsearch": {"hosts": ["http://127.0.0.1:9"]}},
})
from service.store import make_store
make_store(settings)  # what every forked crawl does first (nothing is connected yet)
print(" ".join(sorted(name for name in set(sys.modules) - before if name.split(".")[0] in {NAMES})))
"""


def test_a_forked_crawl_into_elasticsearch_imports_no_database_layer_of_its_own(tmp_path: Path) -> None:
    """A worker's crawl on an Elasticsearch store spools into the database when the cluster is away; the
    database layer (SQLAlchemy, Alembic, psycopg: 1.1 s of the 1.4 s CPU of every crawl) is imported by the
    warm host once, not by each forked crawl."""
    names = {"sqlalchemy", "alembic", "psycopg", "elasticsearch", "scrapy"}
    code = WARM_HOST_CRAWL.replace("{NAMES}", repr(names))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "YUQING_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == ""
