"""What a crawl process learns from the process that started it, through its environment.

A module of its own so that the crawl process can read it without importing ``crawlers.runner``, whose
imports (the health table, SQLAlchemy) a crawl process does not need.
"""

from __future__ import annotations

import signal

# The id of the process that started the crawl: the crawl ends when that process dies
# (crawlers.crawl_process.die_with_parent).
PARENT_ENV = "YUQING_CRAWL_PARENT"

# Key of a crawl result entry holding what the parent records as the source's health (source id and the
# crawl summary); the parent removes it before handing the result on.
HEALTH_KEY = "health_record"

# The parent's request that a crawl stop (the service is stopping): not SIGTERM, whose Scrapy handling waits
# for every request queued behind the politeness delay (a minute and more), and which a second signal turns
# into a stop that drops the last batch unwritten. SIGUSR1 is Scrapy's to leave alone.
STOP_SIGNAL = signal.SIGUSR1

# The Scrapy signal a crawl process sends its crawlers on a stop request: the store pipeline writes what it
# holds at once (crawlers.pipelines.StorePipeline.write_now).
STOP_REQUESTED = object()
