"""What people call each rule: the name given in the console or API, else the one in departments.yaml."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.config_files import ConfigError
from service.rules.config import current_departments
from service.rules.models import RuleRecord


def rule_names(session: Session, config_dir: Path) -> dict[str, str]:
    """Rule id -> name, for every rule that has one (rules without a name are shown by id).

    The table's name wins; the file's fills in for rules imported before names were kept in the table
    (their row is rewritten only when their text in departments.yaml changes).
    """
    try:
        names = {
            rule.id: rule.name
            for department in current_departments(Path(config_dir)).departments
            for rule in department.rules
            if rule.name
        }
    except ConfigError:
        names = {}
    stored = session.execute(select(RuleRecord.id, RuleRecord.name).where(RuleRecord.name.is_not(None)))
    names.update({rule_id: name for rule_id, name in stored if name})
    return names
