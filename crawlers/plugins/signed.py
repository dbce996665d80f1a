"""Example plug-in: a JSON API that wants every request signed with md5(path + body + token).

This is how 人民网's 留言板 API is called by its own pages (a ``signature`` header over the request
path, the JSON body and a token issued to the front end). Configure it in sources.yaml::

    plugin: crawlers.plugins.signed:Md5Signature
    plugin_options:
      token_env: YUQING_BOARD_TOKEN   # where the token is read from (or ``token:`` written inline)
      header: signature               # the header carrying the signature (default: signature)
      query: false                    # true: the signed path includes the query string
"""

from __future__ import annotations

import hashlib
import os
from typing import Any
from urllib.parse import urlsplit

import scrapy

from crawlers.plugins import PluginError, SourcePlugin


def md5_signature(path: str, body: bytes, token: str) -> str:
    """Hex md5 over the request path, the body and the token, concatenated."""
    return hashlib.md5(path.encode("utf-8") + body + token.encode("utf-8")).hexdigest()  # noqa: S324 - the site's scheme


class Md5Signature(SourcePlugin):
    """Signs each request: ``<header>: md5(path + body + token)``."""

    def __init__(self, source: Any, options: dict[str, Any]) -> None:
        super().__init__(source, options)
        token = options.get("token")
        if token is None and options.get("token_env"):
            token = os.environ.get(str(options["token_env"]))
        if not token:
            raise PluginError("plugin_options.token (or token_env naming a set variable) is required")
        self.token = str(token)
        self.header = str(options.get("header", "signature"))
        self.with_query = bool(options.get("query", False))

    def sign(self, request: scrapy.Request) -> scrapy.Request:
        parts = urlsplit(request.url)
        path = parts.path + (f"?{parts.query}" if self.with_query and parts.query else "")
        request.headers[self.header] = md5_signature(path, request.body or b"", self.token)
        return request
