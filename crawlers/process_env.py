"""What a crawl process learns from the process that started it, through its environment.

A module of its own so that the crawl process can read it without importing ``crawlers.runner``, whose
imports (the health table, SQLAlchemy) a crawl process does not need.
"""

from __future__ import annotations

# The id of the process that started the crawl: the crawl ends when that process dies
# (crawlers.crawl_process.die_with_parent).
PARENT_ENV = "YUQING_CRAWL_PARENT"

# Key of a crawl result entry holding what the parent records as the source's health (source id and the
# crawl summary); the parent removes it before handing the result on.
HEALTH_KEY = "health_record"
