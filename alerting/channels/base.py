"""The one base of notification channels and the name -> class registry they register into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import apprise

from service.channel_options import CHANNEL_TYPES
from service.channel_options import ChannelConfigError as ChannelConfigError  # where notifiers look for it


class DeliveryError(Exception):
    """A message could not be delivered now (the outbox retries it later)."""


@dataclass(frozen=True)
class Message:
    """What a channel sends: Chinese subject and body plus the routing facts for structured receivers."""

    id: int
    kind: str
    subject: str
    body: str
    department: str | None = None
    severity: str | None = None
    dedupe_key: str = ""
    attachment: str | None = None


class Notifier:
    """One configured channel. Subclasses declare their type name and options and implement ``send``."""

    type_name: ClassVar[str] = ""
    # Whether the channel can carry a file (the weekly ledger); the others rely on the link in the body.
    takes_attachments: ClassVar[bool] = False

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.options = dict(options)

    @classmethod
    def check_options(cls, name: str, options: Mapping[str, Any]) -> None:
        """Raise ChannelConfigError naming the channel and the option when ``options`` do not fit."""
        CHANNEL_TYPES[cls.type_name].check_options(cls.type_name, name, options)

    def send(self, message: Message) -> None:
        """Deliver ``message`` or raise DeliveryError."""
        raise NotImplementedError


NOTIFIERS: dict[str, type[Notifier]] = {}


def register(cls: type[Notifier]) -> type[Notifier]:
    """Class decorator: make ``cls`` available as ``type: <cls.type_name>`` in the settings."""
    if not cls.type_name:
        raise TypeError(f"{cls.__name__} has no type_name")
    if cls.type_name not in CHANNEL_TYPES:
        raise TypeError(f"channel type {cls.type_name!r} has no options in service.channel_options.CHANNEL_TYPES")
    if cls.type_name in NOTIFIERS and NOTIFIERS[cls.type_name] is not cls:
        raise TypeError(f"two notification channel classes for type {cls.type_name!r}")
    if cls.send is Notifier.send:
        raise TypeError(f"{cls.__name__} does not implement send()")
    NOTIFIERS[cls.type_name] = cls
    return cls


class AppriseNotifier(Notifier):
    """Channels delivered through apprise: subclasses only build the apprise URL from their options."""

    def apprise_url(self) -> str:
        """The apprise URL of this channel (contains secrets: never log it)."""
        raise NotImplementedError

    def send(self, message: Message) -> None:
        """Send through apprise; apprise reports failure as False, which becomes DeliveryError."""
        client = apprise.Apprise()
        if not client.add(self.apprise_url()):
            raise DeliveryError(f"channel {self.name}: apprise does not accept the configured options")
        attach = None
        if self.takes_attachments and message.attachment:
            attach = apprise.AppriseAttachment()
            if not attach.add(message.attachment):
                raise DeliveryError(f"channel {self.name}: attachment {message.attachment} cannot be read")
        if not client.notify(title=message.subject, body=message.body, attach=attach):
            raise DeliveryError(f"channel {self.name} ({self.type_name}): delivery failed")
