"""departments.yaml: the shipped example loads, and broken files say which rule is wrong and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config_files import ConfigError
from service.rules.config import department_errors, load_departments
from service.rules.matcher import Matcher

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "departments.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_shipped_departments_load_and_match():
    config = load_departments(REPO_CONFIG)
    matcher = Matcher.build(config.compiled_rules())
    hits = matcher.match("化工厂排污", "青川镇化工厂夜里偷排污水，河道发黑有异味。")
    assert {h.rule_id for h in hits} >= {"env-pollution", "env-river"}
    assert all(h.department == "env" for h in hits)


def test_missing_file_means_no_departments(tmp_path):
    assert load_departments(tmp_path).departments == []


def test_syntax_error_names_rule_and_position(tmp_path):
    write(
        tmp_path,
        """
departments:
  - id: env
    name: 市生态环境局
    rules:
      - {id: ok, expr: 污染}
      - {id: env-bad, expr: '(排污 OR 污染) AND'}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_departments(tmp_path)
    assert str(info.value) == (
        "departments.yaml: departments[0].rules[1].expr: rule env-bad: AND 后面缺少词，此处是表达式结尾"
        "（位置 14，第 15 个字符）"
    )


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "departments:\n  - {id: a, name: 甲, rules: [{id: r1, expr: 污染}]}\n"
            "  - {id: b, name: 乙, rules: [{id: r1, expr: 噪音}]}\n",
            "departments.yaml: departments[1].rules[0].id: rule id 'r1' is already used by departments[0].rules[0]",
        ),
        (
            "departments:\n  - {id: a, name: 甲}\n  - {id: a, name: 乙}\n",
            "departments.yaml: departments[1].id: department id 'a' is already used by departments[0]",
        ),
        (
            "departments:\n  - {id: a, name: 甲, rules: [{id: r1, expr: 污染, severity: urgent}]}\n",
            "departments.yaml: departments[0].rules[0].severity: "
            "Input should be 'minor', 'normal', 'major' or 'critical'",
        ),
        (
            "departments:\n  - {id: a, name: 甲, rules: [{id: r1, expr: 污染, regions: [青川]}]}\n",
            "departments.yaml: departments[0].rules[0]: rule r1: expr 与 regions/subjects/events/exclude 只能二选一",
        ),
        (
            "departments:\n  - {id: a, name: 甲, rules: [{id: r1, exclude: [招聘]}]}\n",
            "departments.yaml: departments[0].rules[0]: rule r1: 需要 expr，或地域词、主体词、事件词中的至少一类",
        ),
        (
            "departments:\n  - {id: a, name: 甲, rules: [{id: r1, regions: [青川, '']}]}\n",
            "departments.yaml: departments[0].rules[0].regions: 第 2 项为空",
        ),
        (
            "departments:\n  - {id: a, name: 甲, rules: [{id: r1, regions: [青川], events: [" + "词," * 600 + "]}]}\n",
            "departments.yaml: departments[0].rules[0]: rule r1: 词过多：结构化规则共 601 个词，最多 500 个",
        ),
        (
            "departments:\n  - {id: a, name: 甲, rules: [{id: r1, exprs: 污染}]}\n",
            "departments.yaml: departments[0].rules[0].exprs: unknown key",
        ),
        (
            "departments:\n  - {id: 环保, name: 甲}\n",
            "departments.yaml: departments[0].id: String should match pattern '^[a-z0-9][a-z0-9_-]*$'",
        ),
        ("departments:\n  - {id: a}\n", "departments.yaml: departments[0].name: required"),
        ("departments: [\n", "departments.yaml: line 2, column 1: not valid YAML"),
        (
            "departments:\n  - {id: a, name: 甲, rules: [{id: r1, expr: 污染, expr: 噪音}]}\n",
            "departments.yaml: line 2, column 49: not valid YAML: duplicate key 'expr'",
        ),
    ],
)
def test_invalid_files_name_the_key_and_reason(tmp_path, yaml_text, expected):
    write(tmp_path, yaml_text)
    with pytest.raises(ConfigError) as info:
        load_departments(tmp_path)
    assert str(info.value).startswith(expected)


def test_disabled_rules_are_not_compiled(tmp_path):
    write(
        tmp_path,
        "departments:\n  - {id: a, name: 甲, rules: [{id: r1, expr: 污染}, {id: r2, expr: 噪音, enabled: false}]}\n",
    )
    assert [r.id for r in load_departments(tmp_path).compiled_rules()] == ["r1"]


def test_rules_check_lists_every_error(tmp_path):
    write(
        tmp_path,
        """
departments:
  - id: env
    name: 市生态环境局
    rules:
      - {id: one, expr: '排污 污染'}
      - {id: two, expr: 'NEAR/3 工资'}
""",
    )
    assert department_errors(tmp_path) == [
        "departments.yaml: departments[0].rules[0].expr: rule one: 两个词之间缺少 AND/OR，此处是词 '污染'"
        "（位置 3，第 4 个字符）",
        "departments.yaml: departments[0].rules[1].expr: rule two: 此处应为词，却是'NEAR/3'（位置 0，第 1 个字符）",
    ]
    assert department_errors(REPO_CONFIG) == []


def test_a_file_not_in_utf8_is_refused_alike_whether_or_not_its_parse_is_kept(tmp_path):
    config, keep = tmp_path / "config", tmp_path / "keep"
    config.mkdir()
    (config / "departments.yaml").write_bytes("departments:\n  - id: env\n    name: 市生态环境局\n".encode("gbk"))
    errors = []
    for keep_dir in (None, keep):
        with pytest.raises(ConfigError) as caught:
            load_departments(config, keep_dir)
        errors.append(str(caught.value))
    assert errors[0] == errors[1] == "departments.yaml: not UTF-8 text（文件不是 UTF-8 编码，请另存为 UTF-8）"
    assert not keep.exists() or not list(keep.iterdir())  # nothing kept for a refused file


def test_the_utf8_check_of_config_files_is_written_once():
    service = Path(__file__).resolve().parents[2] / "service"
    places = [p for p in service.rglob("*.py") if '"not UTF-8 text"' in p.read_text(encoding="utf-8")]
    assert [p.relative_to(service).as_posix() for p in places] == ["config_files.py"]
