"""``departments.yaml``: departments and their keyword rules, validated and compiled at load time."""

from __future__ import annotations

import hashlib
import marshal
from pathlib import Path
from typing import Any

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from service.config_files import (
    ConfigError,
    cached,
    config_error,
    load_model,
    parse_yaml_bytes,
    read_yaml,
    validation_to_config_error,
)
from service.files import atomic_path
from service.folding import kept_tables_name, tables_blob, use_tables_blob
from service.rules.language import RuleSyntaxError, parse
from service.rules.matcher import CompiledRule, compile_rule
from service.rules.structured import BOTH_FORMS, NO_FORM, structured_node
from service.vocabulary import Severity

DEPARTMENTS_FILE = "departments.yaml"
# Where the parsed departments.yaml is kept across restarts, under the data dir.
KEEP_DIR = "parsed-config"
SLUG = r"^[a-z0-9][a-z0-9_-]*$"


class RuleConfig(BaseModel):
    """One rule: either ``expr`` or the structured lists."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SLUG)
    name: str | None = None
    expr: str | None = None
    regions: list[str] = Field(default_factory=list)
    subjects: list[str] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    severity: Severity = "normal"
    enabled: bool = True

    @field_validator("expr")
    @classmethod
    def _parses(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        try:
            parse(value)
        except RuleSyntaxError as exc:
            rule_id = info.data.get("id", "?")
            raise ValueError(f"rule {rule_id}: {exc}") from exc
        return value

    @field_validator("regions", "subjects", "events", "exclude")
    @classmethod
    def _entries(cls, value: list[str]) -> list[str]:
        for index, entry in enumerate(value):
            if not entry.strip():
                raise ValueError(f"第 {index + 1} 项为空")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> RuleConfig:
        structured = self.regions or self.subjects or self.events or self.exclude
        if self.expr is not None and structured:
            raise ValueError(f"rule {self.id}: {BOTH_FORMS}")
        if self.expr is None and not (self.regions or self.subjects or self.events):
            raise ValueError(f"rule {self.id}: {NO_FORM}")
        if self.expr is None:
            try:
                structured_node(self.regions, self.subjects, self.events, self.exclude)
            except ValueError as exc:
                raise ValueError(f"rule {self.id}: {exc}") from exc
        return self

    def compile(self, department: str) -> CompiledRule:
        """The rule ready for :meth:`Matcher.build`."""
        return compile_rule(
            self.id,
            department,
            self.severity,
            self.expr,
            regions=self.regions,
            subjects=self.subjects,
            events=self.events,
            exclude=self.exclude,
        )


class DepartmentConfig(BaseModel):
    """A responsible unit (责任单位) and the rules that route items to it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SLUG)
    name: str = Field(min_length=1)
    rules: list[RuleConfig] = Field(default_factory=list)


class DepartmentsConfig(BaseModel):
    """The whole ``departments.yaml``."""

    model_config = ConfigDict(extra="forbid")

    departments: list[DepartmentConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> DepartmentsConfig:
        # The key path is in the message because an after-validator's error sits on the whole file.
        departments: dict[str, int] = {}
        rules: dict[str, str] = {}
        for d_index, department in enumerate(self.departments):
            if department.id in departments:
                first = departments[department.id]
                raise ValueError(
                    f"departments[{d_index}].id: department id {department.id!r} is already used by "
                    f"departments[{first}]"
                )
            departments[department.id] = d_index
            for r_index, rule in enumerate(department.rules):
                where = f"departments[{d_index}].rules[{r_index}]"
                if rule.id in rules:
                    raise ValueError(f"{where}.id: rule id {rule.id!r} is already used by {rules[rule.id]}")
                rules[rule.id] = where
        return self

    def compiled_rules(self) -> list[CompiledRule]:
        """Every enabled rule of every department, compiled, in file order."""
        return [
            rule.compile(department.id) for department in self.departments for rule in department.rules if rule.enabled
        ]


def load_departments(config_dir: Path, keep_dir: Path | None = None) -> DepartmentsConfig:
    """Load ``departments.yaml`` from the config dir; missing means no departments; ConfigError if invalid.

    ``keep_dir`` (``settings.data_path(KEEP_DIR)``) keeps the parsed file across restarts (:func:`read_yaml_kept`).
    """
    path = config_dir / DEPARTMENTS_FILE
    if keep_dir is None:
        return load_model(path, DepartmentsConfig)
    try:
        return DepartmentsConfig.model_validate(read_yaml_kept(path, keep_dir) or {})
    except ValidationError as exc:
        raise validation_to_config_error(path.name, exc) from exc


def read_yaml_kept(path: Path, keep_dir: Path) -> dict[str, Any] | None:
    """:func:`read_yaml`, the parsed data kept in ``keep_dir`` under the SHA-256 of the file's bytes.

    A city's departments.yaml (10k rules, 2 MB) takes seconds to parse even with libyaml; a restart with
    the file unchanged reads the kept copy instead. marshal holds exactly the types a safe load gives
    (a file whose data it cannot hold, dates for one, is simply not kept); the keep dir is the service's
    own data directory, as trusted as its database.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    digest = hashlib.sha256(raw).hexdigest()
    kept = keep_dir / f"{path.name}.{digest}.marshal"
    try:
        data = marshal.loads(kept.read_bytes())  # noqa: S302 - written by this function, in the data dir
        if isinstance(data, dict):
            return data
    except (OSError, EOFError, ValueError, TypeError):
        pass  # not kept yet, or unreadable: parse
    data = parse_yaml_bytes(path.name, raw)
    try:
        blob = marshal.dumps(data)
        keep_dir.mkdir(parents=True, exist_ok=True)
        for old in keep_dir.glob(f"{path.name}.*.marshal"):
            old.unlink(missing_ok=True)
        with atomic_path(kept) as partial:
            partial.write_bytes(blob)
    except (OSError, ValueError):
        logger.debug("{} 的解析结果未缓存", path.name)
    return data


def current_departments(config_dir: Path, keep_dir: Path | None = None) -> DepartmentsConfig:
    """``departments.yaml`` as last loaded, re-read only when the file changed (for request paths)."""
    path = Path(config_dir) / DEPARTMENTS_FILE
    return cached("departments", [path], lambda: load_departments(Path(config_dir), keep_dir))


def department_errors(config_dir: Path) -> list[str]:
    """Every problem in ``departments.yaml``, one line each (``yuqing rules check`` lists them all)."""
    path = config_dir / DEPARTMENTS_FILE
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        return [str(exc)]
    try:
        DepartmentsConfig.model_validate(data or {})
    except ValidationError as exc:
        return [str(config_error(path.name, err)) for err in exc.errors()]
    return []


def keep_folding_tables(keep_dir: Path) -> None:
    """Read the folding tables (case and width, service.folding) kept in ``keep_dir``, or build and keep them.

    Building them costs ~0.3 s CPU at every start of the service and of every crawl process; reading the
    kept copy a few milliseconds. Called before the process folds anything.
    """
    path = keep_dir / kept_tables_name()
    try:
        if use_tables_blob(path.read_bytes()):
            return
    except OSError:
        pass  # not kept yet: build
    blob = tables_blob()
    try:
        keep_dir.mkdir(parents=True, exist_ok=True)
        for old in keep_dir.glob("folding.*.marshal"):
            old.unlink(missing_ok=True)
        with atomic_path(path) as partial:
            partial.write_bytes(blob)
    except OSError:
        logger.debug("大小写与全半角折叠表未缓存到 {}", keep_dir)
