"""Place names come out whole with jieba and the configured dictionary (departments.yaml regions, places.txt)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.items import places
from service.items.places import Gazetteer, config_words, region_of


def test_places_of_a_complaint_by_level() -> None:
    places = Gazetteer().extract("河西区柳岸社区旁边，滨江大道上的阳光花园小区门口积水，青川县石桥镇也有类似情况。")
    found = {p.name: p.level for p in places}
    assert found["河西区"] == "district"
    assert found["滨江大道"] == "road"
    assert found["阳光花园小区"] == "estate"
    assert found["石桥镇"] == "town"
    assert region_of(places) == "河西区"


def test_configured_names_come_out_whole(tmp_path: Path) -> None:
    text = "翠屏湾的居民反映，楼下的烧烤摊油烟很大。"
    assert "翠屏湾" not in {p.name for p in Gazetteer().extract(text)}
    (tmp_path / "places.txt").write_text("# 本地地名\n翠屏湾\n", encoding="utf-8")
    (tmp_path / "departments.yaml").write_text(
        "departments:\n  - id: env\n    name: 市生态环境局\n    rules:\n"
        "      - id: env-r\n        regions: [高新园]\n        events: [异味]\n",
        encoding="utf-8",
    )
    words = config_words(tmp_path)
    assert set(words) == {"翠屏湾", "高新园"}
    assert "翠屏湾" in {p.name for p in Gazetteer(words).extract(text)}


def test_a_headline_word_and_the_first_body_word_are_not_one_place() -> None:
    assert {p.name for p in Gazetteer().extract("上学难怎么办\n新区没有小学")} == set()


def test_configured_names_are_read_when_first_needed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every crawl process configures the gazetteer; departments.yaml with thousands of rules takes seconds
    to parse, and most crawls never compare two texts closely enough to ask for places."""
    read: list[Path] = []
    monkeypatch.setattr(places, "_default", places._default)  # the process's gazetteer is put back after
    monkeypatch.setattr(places, "config_words", lambda config_dir: read.append(config_dir) or config_words(config_dir))
    (tmp_path / "places.txt").write_text("翠屏湾\n", encoding="utf-8")
    gazetteer = places.configure(tmp_path)
    assert read == []
    assert "翠屏湾" in {p.name for p in gazetteer.extract("翠屏湾的居民反映，楼下的烧烤摊油烟很大。")}
    assert read == [tmp_path]


def test_a_restart_loads_the_dictionary_from_the_data_dir_until_the_names_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 10k rules, building the dictionary (parsing departments.yaml, adding every region) took most of
    the time to a first match after `yuqing run`; a restart now reads the copy kept in the data dir, and a
    changed places.txt or departments.yaml builds it anew."""
    config, keep = tmp_path / "config", tmp_path / "data" / "parsed-config"
    config.mkdir()
    (config / "places.txt").write_text("翠屏湾\n", encoding="utf-8")
    text = "翠屏湾和云杉里的居民反映，楼下的烧烤摊油烟很大。"
    first = Gazetteer(config_dir=config, keep_dir=keep)
    assert "翠屏湾" in {p.name for p in first.extract(text)}
    assert first.loaded_from == "built"
    assert len(list(keep.glob("places.*.marshal"))) == 1

    parsed: list[Path] = []
    monkeypatch.setattr(places, "config_words", lambda d: parsed.append(d) or config_words(d))
    restart = Gazetteer(config_dir=config, keep_dir=keep)
    assert restart.extract(text) == first.extract(text)
    assert restart.loaded_from == "kept"
    assert parsed == []  # departments.yaml and places.txt were not read as names

    (config / "places.txt").write_text("翠屏湾\n云杉里\n", encoding="utf-8")
    changed = Gazetteer(config_dir=config, keep_dir=keep)
    assert {"翠屏湾", "云杉里"} <= {p.name for p in changed.extract(text)}
    assert changed.loaded_from == "built"
    assert len(list(keep.glob("places.*.marshal"))) == 1  # the stale copy is gone
    assert Gazetteer(config_dir=config, keep_dir=keep).loaded_from is None  # loaded when first needed
