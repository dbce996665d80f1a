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
# "module:function" returning list[JobSpec], one per domain that has scheduled work.
_factories: list[str] = [
    "crawlers.scheduled:jobs",
    "service.matching.scheduled:jobs",
    "service.tickets.scheduled:jobs",
    "service.exports.scheduled:jobs",
    "service.audit.scheduled:jobs",
]


def register(factory_path: str) -> None:
    """Add a job factory (``module:function`` taking Settings) to the scheduler."""
    if factory_path not in _factories:
        _factories.append(factory_path)


def job_specs(settings: Settings) -> list[JobSpec]:
    from importlib import import_module

    from loguru import logger

    specs: list[JobSpec] = []
    for path in _factories:
        module, _, attr = path.partition(":")
        try:
            factory = getattr(import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            # One broken domain must not stop every other job; the error is loud in the log.
            logger.error("job factory {} not loaded: {}", path, exc)
            continue
        specs.extend(factory(settings))
    return specs
