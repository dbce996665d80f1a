"""Plug-in point for sites that need code: a class named in sources.yaml (``plugin: package.module:Class``).

A plug-in can sign every request of its source, replace the first requests, and decode responses; the
items still go through the same spiders, pipeline, source health and store. Write one by subclassing
SourcePlugin and overriding only what the site needs::

    class MySite(SourcePlugin):
        def sign(self, request):                       # every request of the source, before it is sent
            return request.replace(headers={**request.headers.to_unicode_dict(), "X-Token": self.options["token"]})

        def decode(self, response, text):               # a response body the selectors cannot read as is
            return json.loads(base64.b64decode(text))   # -> data for list.items / fields paths (or HTML text)

Plug-ins come only from sources.yaml (the administrator's own config), never from sources added through the API.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import scrapy
    from scrapy.http import Response


class PluginSource(Protocol):
    """What a plug-in is told of its source (a ``crawlers.sources.Source``, whose validation loads the
    plug-in: the plug-in point names the few fields it promises instead of importing the source model)."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def start_urls(self) -> list[str]: ...


class SourcePlugin:
    """The base of source plug-ins; every hook's default leaves the crawl as the configuration says."""

    def __init__(self, source: PluginSource, options: dict[str, Any]) -> None:
        self.source = source
        self.options = options

    def start_requests(self, spider: Any) -> Iterable[scrapy.Request] | None:
        """Requests to start with instead of the start URLs' list pages (None: the configured ones).

        Use ``spider.parse_list`` (html) or ``spider.parse_page`` (json) as callback and put ``{"page": 1,
        "start_url": url}`` into meta so the configured paging goes on from there.
        """
        return None

    def sign(self, request: scrapy.Request) -> scrapy.Request:
        """The request as it must be sent (signature headers, tokens); called for every request of the source."""
        return request

    def decode(self, response: Response, text: str) -> Any:
        """The response's content for the selectors: None to read ``text`` as configured, a str to read that
        instead, or data (dicts and lists) to use with the source's paths."""
        return None


class PluginError(ValueError):
    """A plug-in named in sources.yaml cannot be loaded."""


def plugin_class(path: str) -> type[SourcePlugin]:
    """The class named ``package.module:Class`` (or ``package.module.Class``); PluginError otherwise."""
    module_name, sep, class_name = path.partition(":")
    if not sep:
        module_name, _, class_name = path.rpartition(".")
    if not module_name or not class_name:
        raise PluginError(f"write the plug-in as package.module:Class, not {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import {module_name!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, SourcePlugin):
        raise PluginError(f"{path!r} is not a SourcePlugin subclass")
    return cls
