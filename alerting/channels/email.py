"""E-mail through an SMTP server, via apprise's mailto:// plugin."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from alerting.channels.base import AppriseNotifier, register


@register
class EmailNotifier(AppriseNotifier):
    """Options: ``host``, ``to`` (address or list), ``sender``; optional ``port``, ``username``,
    ``password``, ``secure`` (true: SMTPS/STARTTLS via mailtos://)."""

    type_name = "email"
    takes_attachments = True

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
