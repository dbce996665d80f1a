"""The jobs the scheduler runs. Domains add theirs here; functions are referenced by import path
because the job store persists them in the database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from service.settings import Settings


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: str  # "module:function", importable in any process
    trigger: BaseTrigger
    kwargs: dict[str, Any] = field(default_factory=dict)
    name: str = ""


JobFactory = Callable[[Settings], list[JobSpec]]
_factories: list[str] = [
    # "module:function" returning list[JobSpec]; imported lazily so a missing domain never breaks start-up.
]


def register(factory_path: str) -> None:
    """Add a job factory (``module:function`` taking Settings) to the scheduler."""
    if factory_path not in _factories:
        _factories.append(factory_path)


def job_specs(settings: Settings) -> list[JobSpec]:
    from importlib import import_module

    specs: list[JobSpec] = []
    for path in _factories:
        module, _, attr = path.partition(":")
        specs.extend(getattr(import_module(module), attr)(settings))
    return specs
