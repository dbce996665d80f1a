"""The jobs the scheduler runs. The composition root (``service.app``) registers each domain's job factory;
the jobs' functions are referenced by import path because the job store persists them in the database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from loguru import logger

from service.settings import Settings


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: str  # "module:function", importable in any process
    trigger: BaseTrigger
    kwargs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    # Crawl and match work: with a task queue configured (queue.backend), the scheduler defers the job
    # and a `yuqing worker` runs it. At most one job of a lock runs or waits at a time, on all workers
    # together (a source is never crawled twice at once; matching runs one batch run at a time).
    queued: bool = False
    lock: str | None = None
    # A first run planned at a start date that passed while the scheduler was still adding jobs runs at
    # once instead of one interval later (staggered first crawls of hundreds of sources).
    first_run_catch_up: bool = False


JobFactory = Callable[[Settings], list[JobSpec]]
# One factory per domain that has scheduled work: a function, or its "module:function" path (extensions).
_factories: list[JobFactory | str] = []


def register(factory: JobFactory | str) -> None:
    """Add a job factory (taking Settings, returning the domain's JobSpecs) to the scheduler."""
    if factory not in _factories:
        _factories.append(factory)


def job_specs(settings: Settings) -> list[JobSpec]:
    """Every registered domain's jobs for these settings."""
    specs: list[JobSpec] = []
    for entry in _factories:
        if callable(entry):
            specs.extend(entry(settings))
            continue
        module, _, attr = entry.partition(":")
        try:
            factory = getattr(import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            # One broken extension must not stop every other job; the error is loud in the log.
            logger.error("任务工厂 {} 加载失败：{}", entry, exc)
            continue
        specs.extend(factory(settings))
    return specs
