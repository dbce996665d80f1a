"""Notification channels: one module per type, all on alerting.channels.base.Notifier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerting.channels import dingtalk, email, feishu, webhook, wecom
from alerting.channels.base import (
    NOTIFIERS,
    ChannelConfigError,
    DeliveryError,
    Message,
    Notifier,
)
from service.channel_options import check_channel_config as channel_type

__all__ = [
    "NOTIFIERS",
    "ChannelConfigError",
    "DeliveryError",
    "Message",
    "Notifier",
    "build_notifier",
    "check_channel_config",
]
_MODULES = (dingtalk, email, feishu, webhook, wecom)  # imported for their @register side effect


def check_channel_config(name: str, options: Mapping[str, Any]) -> type[Notifier]:
    """The class of channel ``name``; ChannelConfigError when its type or options are wrong."""
    return NOTIFIERS[channel_type(name, options)]


def build_notifier(name: str, options: Mapping[str, Any]) -> Notifier:
    """A ready notifier for channel ``name`` configured with ``options``."""
    return check_channel_config(name, options)(name, options)
