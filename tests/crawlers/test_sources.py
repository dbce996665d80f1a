"""sources.yaml validation: errors name the file, the key path and the reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from crawlers.api_sources import add_api_source, api_sources_path
from crawlers.sources import load_all_sources, load_sources, parse_interval
from service.config_files import ConfigError
from service.settings import load_settings

REPO = Path(__file__).resolve().parents[2]

RSS = '{id: news, name: 新闻, channel: media, type: rss, start_urls: ["http://a.example/rss"], interval: 1h}'


def _load(tmp_path: Path, text: str) -> object:
    (tmp_path / "sources.yaml").write_text(text, encoding="utf-8")
    return load_sources(tmp_path, strict=True)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    return str(info.value)


def test_missing_list_items_names_the_source_index(tmp_path: Path) -> None:
    text = f"""sources:
  - {RSS}
  - {{id: b, name: B, channel: media, type: rss, start_urls: ["http://b/"], interval: 1h}}
  - id: c
    name: C
    channel: hotline
    type: html
    start_urls: ["http://c.example/list.html"]
    interval: 15m
    list: {{url: "a::attr(href)"}}
    fields: {{title: h1}}
"""
    assert _error(tmp_path, text) == "sources.yaml: sources[2].list.items: required（缺少必填项）"


def test_html_source_needs_list_and_title(tmp_path: Path) -> None:
    base = 'sources:\n  - {id: c, name: C, channel: hotline, type: html, start_urls: ["http://c/"], interval: 15m'
    missing = "required（缺少必填项）"
    assert _error(tmp_path, base + ", fields: {title: h1}}\n") == f"sources.yaml: sources[0].list: {missing}"
    assert _error(tmp_path, base + ", list: {items: li}}\n") == f"sources.yaml: sources[0].fields.title: {missing}"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ("id: News_1", "sources[0].id"),
        ("channel: weibo", "sources[0].channel"),
        ("type: xml", "sources[0].type"),
        ("interval: 15x", "sources[0].interval"),
        ('start_urls: ["file:///etc/passwd"]', "sources[0].start_urls"),
        ("encoding: klingon", "sources[0].encoding"),
        ("colour: red", "sources[0].colour"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, change: str, where: str) -> None:
    key = change.split(":")[0]
    fields = {k.split(":")[0].strip(): k for k in RSS.strip("{}").split(", ")}
    fields[key] = change
    text = "sources:\n  - {" + ", ".join(fields.values()) + "}\n"
    assert _error(tmp_path, text).startswith(f"sources.yaml: {where}: ")


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    assert "duplicate source id 'news'" in _error(tmp_path, f"sources:\n  - {RSS}\n  - {RSS}\n")


def test_rss_needs_only_the_basics_and_gets_defaults(tmp_path: Path) -> None:
    sources = _load(tmp_path, f"sources:\n  - {RSS}\n")
    src = sources.get("news")  # type: ignore[attr-defined]
    assert src.obey_robots is True
    assert src.max_pages == 5
    assert src.period == timedelta(hours=1)
    assert src.trusted_hosts == {"a.example"}


def test_missing_file_means_no_sources(tmp_path: Path) -> None:
    assert load_sources(tmp_path).sources == []


def test_intervals() -> None:
    assert parse_interval("30s") == timedelta(seconds=30)
    assert parse_interval("1d") == timedelta(days=1)
    with pytest.raises(ValueError, match="invalid interval"):
        parse_interval("0m")


@pytest.mark.parametrize("path", ["config/sources.yaml", "crawlers/demo/sources.yaml"])
def test_shipped_files_are_valid(path: str) -> None:
    sources = load_sources((REPO / path).parent)
    assert {s.channel for s in sources.sources} == {"hotline", "mailbox", "media"}
    assert {s.type for s in sources.sources} == {"html", "json", "rss"}


HTML_SOURCE = (
    'sources:\n  - {{id: c, name: C, channel: hotline, type: {type}, start_urls: ["http://c/"], interval: 15m,'
    " fields: {{title: h1}}, list: {{items: li, {list}}}}}\n"
)


@pytest.mark.parametrize(
    ("type_", "list_", "error"),
    [
        ("html", 'page_url: "list_{pg}.html"', "sources[0].list.page_url: unknown placeholder {pg} in"),
        ("html", 'page_url: "list.html"', "sources[0].list.page_url: page_url must contain {page}"),
        ("html", 'page_url: "list.jsp?start={offset}"', "sources[0].list.page_size: required"),
        ("json", "cursor: data.next", "sources[0].list.cursor_param: required"),
        ("html", "cursor: data.next, cursor_param: c", "sources[0].list.cursor: only for json sources"),
        ("html", "form: {method: post}", "sources[0].list.form.page_field: required"),
        ("html", "form: {aspnet: true}", "sources[0].list.form.event_target: required"),
        ("json", "form: {aspnet: true, event_target: g}", "sources[0].list.form.aspnet: only for html sources"),
        ("html", 'form: {page_field: p, data: {start: "{offset}"}}', "sources[0].list.page_size: required"),
        ("html", 'total_pages_js: "a(b)"', "sources[0].list.total_pages_js: not a JavaScript name"),
    ],
)
def test_incomplete_pagination_is_named(tmp_path: Path, type_: str, list_: str, error: str) -> None:
    assert _error(tmp_path, HTML_SOURCE.format(type=type_, list=list_)).startswith(f"sources.yaml: {error}")


def test_pagination_keys_accepted(tmp_path: Path) -> None:
    list_ = (
        'page_url: "dataproxy.jsp?startrecord={offset}&endrecord={end}", page_size: 15, offset_start: 1, '
        'form: {data: {col: "1", webid: "3"}, page_field: p}, total_pages_js: createPageHTML'
    )
    src = _load(tmp_path, HTML_SOURCE.format(type="html", list=list_)).get("c")  # type: ignore[attr-defined]
    assert src.list_.form.method == "post"
    assert src.list_.offset_start == 1


def test_all_sources_are_parsed_once_and_again_when_a_file_changes(tmp_path: Path) -> None:
    """Every crawl job asks for the sources (the worker twice, the crawl once): a city's hundreds of sources
    are parsed once, and an edit of sources.yaml or of the API-added sources is seen at the next ask."""
    config = tmp_path / "config"
    config.mkdir()
    sources = config / "sources.yaml"
    sources.write_text(f"sources:\n  - {RSS}\n", encoding="utf-8")
    settings = load_settings(config, data_dir=str(tmp_path / "data"))
    first = load_all_sources(settings)
    assert [s.id for s in first.sources] == ["news"]
    assert load_all_sources(settings) is first
    sources.write_text(f"sources:\n  - {RSS}\n  - {RSS.replace('news', 'media2')}\n", encoding="utf-8")
    assert [s.id for s in load_all_sources(settings).sources] == ["news", "media2"]
    api = api_sources_path(settings)
    api.parent.mkdir(parents=True, exist_ok=True)
    add_api_source(api, {**yaml.safe_load(RSS), "id": "api1", "start_urls": ["http://b.example/rss"]})
    assert [s.id for s in load_all_sources(settings).sources] == ["news", "media2", "api1"]
