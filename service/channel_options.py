"""What ``notifications.channels`` may say: each channel type's options, checked when settings load.

The schema lives in the foundation so that reading settings needs no notifier code; ``alerting.channels``
implements one notifier per type named here and checks at import that the two agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class ChannelConfigError(ValueError):
    """A channel in ``notifications.channels`` is misconfigured (unknown type, missing option)."""


def _email_recipients(name: str, options: Mapping[str, Any]) -> None:
    to = options["to"]
    for address in [to] if isinstance(to, str) else list(to):
        if "@" not in str(address):
            raise ChannelConfigError(f"channels.{name}.to: {address!r} is not an e-mail address")


def _http_url(name: str, options: Mapping[str, Any]) -> None:
    if not str(options["url"]).startswith(("http://", "https://")):
        raise ChannelConfigError(f"channels.{name}.url: must start with http:// or https://")


@dataclass(frozen=True)
class ChannelType:
    """The options of one channel type; ``check`` looks at their values once the names are right."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    check: Callable[[str, Mapping[str, Any]], None] | None = None

    def check_options(self, type_name: str, name: str, options: Mapping[str, Any]) -> None:
        """Raise ChannelConfigError naming the channel and the option when ``options`` do not fit."""
        for key in self.required:
            if options.get(key) in (None, "", []):
                raise ChannelConfigError(f"channels.{name}.{key}: required for type {type_name}")
        known = {"type", *self.required, *self.optional}
        for key in options:
            if key not in known:
                raise ChannelConfigError(
                    f"channels.{name}.{key}: unknown option for type {type_name} "
                    f"(known: {', '.join(sorted(known - {'type'}))})"
                )
        if self.check is not None:
            self.check(name, options)


CHANNEL_TYPES: Mapping[str, ChannelType] = {
    # 钉钉群机器人: access_token of the robot webhook, 加签 secret.
    "dingtalk": ChannelType(required=("token",), optional=("secret",)),
    "email": ChannelType(
        required=("host", "to", "sender"), optional=("port", "username", "password", "secure"), check=_email_recipients
    ),
    "feishu": ChannelType(required=("token",)),
    "webhook": ChannelType(required=("url", "secret"), optional=("timeout",), check=_http_url),
    "wecom": ChannelType(required=("key",)),
}


def check_channel_config(name: str, options: Mapping[str, Any]) -> str:
    """The type name of channel ``name``; ChannelConfigError when its type or options are wrong."""
    kind = options.get("type")
    if not kind:
        raise ChannelConfigError(f"channels.{name}.type: required (one of {', '.join(sorted(CHANNEL_TYPES))})")
    channel_type = CHANNEL_TYPES.get(str(kind))
    if channel_type is None:
        raise ChannelConfigError(
            f"channels.{name}.type: unknown channel type {kind!r} (one of {', '.join(sorted(CHANNEL_TYPES))})"
        )
    channel_type.check_options(str(kind), name, options)
    return str(kind)
