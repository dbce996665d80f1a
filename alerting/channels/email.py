"""E-mail through an SMTP server, via apprise's mailto:// plugin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from alerting.channels.base import AppriseNotifier, ChannelConfigError, register


@register
class EmailNotifier(AppriseNotifier):
    """Options: ``host``, ``to`` (address or list), ``sender``; optional ``port``, ``username``,
    ``password``, ``secure`` (true: SMTPS/STARTTLS via mailtos://)."""

    type_name = "email"
    takes_attachments = True
    required = ("host", "to", "sender")
    optional = ("port", "username", "password", "secure")

    @classmethod
    def check_options(cls, name: str, options: Mapping[str, Any]) -> None:
        """Besides the declared options, every recipient must look like an address."""
        super().check_options(name, options)
        to = options["to"]
        for address in [to] if isinstance(to, str) else list(to):
            if "@" not in str(address):
                raise ChannelConfigError(f"channels.{name}.to: {address!r} is not an e-mail address")

    def recipients(self) -> list[str]:
        """The ``to`` option as a list."""
        to = self.options["to"]
        return [to] if isinstance(to, str) else [str(a) for a in to]

    def apprise_url(self) -> str:
        """``mailto[s]://[user:password@]host[:port]/?to=...&from=...&smtp=host``."""
        opts = self.options
        scheme = "mailtos" if opts.get("secure") else "mailto"
        auth = ""
        if opts.get("username"):
            auth = quote(str(opts["username"]), safe="")
            if opts.get("password"):
                auth += ":" + quote(str(opts["password"]), safe="")
            auth += "@"
        host = str(opts["host"])
        port = f":{int(opts['port'])}" if opts.get("port") else ""
        query = urlencode({"to": ",".join(self.recipients()), "from": opts["sender"], "smtp": host})
        return f"{scheme}://{auth}{host}{port}/?{query}"
