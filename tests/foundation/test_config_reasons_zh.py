"""A refused config file is explained in Chinese after the English reason that scripts match.

``sources.yaml: sources[2].list.items: required`` stays as the contract shows it, and ``（缺少必填项）``
follows, for every reason the loaders give: pydantic's error types, our validators' messages, YAML errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config_files import FALLBACK_WORDS, REASON_WORDS, ConfigError, explain
from service.settings import load_settings
from tests.foundation.conftest import run_cli_session

SOURCE = """sources:
  - id: a
    name: 示例
    channel: hotline
    type: html
    start_urls: ["http://127.0.0.1:9/list.html"]
    interval: {interval}
    list: {list}
    fields: {{title: h1}}
"""

# (file name, text, command after --config DIR, the line on stderr)
CASES = [
    (
        "sources.yaml",
        SOURCE.format(interval="1h", list="{url: a}"),
        ["crawl", "a"],
        "yuqing: sources.yaml: sources[0].list.items: required（缺少必填项）",
    ),
    (
        "sources.yaml",
        SOURCE.format(interval="5x", list="{items: li, url: a}"),
        ["crawl", "a"],
        "yuqing: sources.yaml: sources[0].interval: invalid interval '5x': use a positive number with s, m, h or d"
        " (e.g. 15m)（周期应写成正数加单位 s、m、h 或 d，如 15m）",
    ),
    (
        "settings.yaml",
        "server:\n  port: 8000\n  bogus: 1\n",
        ["rules", "check"],
        "yuqing: settings.yaml: server.bogus: unknown key（未知的键，可能是拼写错误）",
    ),
    (
        "settings.yaml",
        "server:\n  port: abc\n",
        ["rules", "check"],
        "yuqing: settings.yaml: server.port: Input should be a valid integer, unable to parse string as an integer"
        "（应为整数）",
    ),
    (
        "settings.yaml",
        "store:\n  backend: mysql\n",
        ["rules", "check"],
        "yuqing: settings.yaml: store.backend: Input should be 'sqlite' or 'elasticsearch'"
        "（应为 'sqlite'、'elasticsearch' 之一）",
    ),
    (
        "settings.yaml",
        "scheduler:\n  crawl_niceness: 30\n",
        ["rules", "check"],
        "yuqing: settings.yaml: scheduler.crawl_niceness: Input should be less than or equal to 19（不能大于 19）",
    ),
    (
        "settings.yaml",
        "server: [\n",
        ["rules", "check"],
        "yuqing: settings.yaml: line 2, column 1: not valid YAML: did not find expected node content"
        "（不是合法的 YAML，请检查这一行的缩进、冒号和引号）",
    ),
    (
        "settings.yaml",
        "scheduler:\n  coalesce: true\nscheduler:\n  coalesce: false\n",
        ["rules", "check"],
        "yuqing: settings.yaml: line 3, column 1: not valid YAML: duplicate key 'scheduler'"
        "（同一层中同一个键写了两次）",
    ),
    (
        "settings.yaml",
        "- a\n- b\n",
        ["rules", "check"],
        "yuqing: settings.yaml: the top level must be a mapping（文件最外层应为“键: 值”的映射）",
    ),
]


def test_the_cli_explains_each_common_reason_in_chinese_after_the_english(tmp_path: Path) -> None:
    commands = []
    for number, (name, text, command, _line) in enumerate(CASES):
        config = tmp_path / f"config{number}"
        config.mkdir()
        (config / name).write_text(text, encoding="utf-8")
        commands.append((["--config", str(config), *command], ""))
    results = run_cli_session(commands, env={"YUQING_DATA_DIR": str(tmp_path / "data")})
    for (_name, _text, _command, line), result in zip(CASES, results, strict=True):
        assert result.returncode == 2, (line, result.stdout, result.stderr)
        assert result.stderr.strip().splitlines()[-1] == line


def test_rules_check_lists_each_departments_error_with_its_chinese(tmp_path: Path) -> None:
    (tmp_path / "departments.yaml").write_text(
        "departments:\n  - id: x\n    name: 部门\n    rules:\n      - {id: r, expr: 噪音, severity: huge, extra: 1}\n",
        encoding="utf-8",
    )
    (result,) = run_cli_session([(["--config", str(tmp_path), "rules", "check"], "")])
    assert result.returncode == 2
    assert (
        "departments.yaml: departments[0].rules[0].severity: Input should be 'minor', 'normal', 'major' or "
        "'critical'（应为 'minor'、'normal'、'major'、'critical' 之一）"
    ) in result.stdout + result.stderr
    assert "departments.yaml: departments[0].rules[0].extra: unknown key（未知的键，可能是拼写错误）" in (
        result.stdout + result.stderr
    )


def test_an_environment_override_is_explained_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUQING_SERVER__PORT", "abc")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path)
    assert str(caught.value).startswith("YUQING_SERVER__PORT: server.port: Input should be a valid integer")
    assert str(caught.value).endswith("（应为整数）")


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("'2027-02-30' is not a date (use YYYY-MM-DD)", "不是有效的日期，应写成 YYYY-MM-DD"),
        ("routes[0].channels: unknown channel 'ops'", "没有配置这个通知渠道"),
        ("channels.robot.key: required for type wecom", "这种通知渠道必须填写此项"),
        ("duplicate source id 'a'", "来源 id 重复"),
        ("a reason nobody wrote a table row for", FALLBACK_WORDS),
    ],
)
def test_every_english_reason_gets_chinese_words(reason: str, words: str) -> None:
    assert explain(reason) == words
    assert str(ConfigError("x.yaml", "k", reason)) == f"x.yaml: k: {reason}（{words}）"


def test_a_reason_in_chinese_already_is_not_explained_twice() -> None:
    assert str(ConfigError("sources.yaml", "", "未知的来源: zz")) == "sources.yaml: 未知的来源: zz"


def test_each_row_of_the_table_is_chinese() -> None:
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in words) for _pattern, words in REASON_WORDS)
