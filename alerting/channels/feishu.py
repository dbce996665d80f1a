"""Feishu / Lark group robot (飞书群机器人) through apprise."""

from __future__ import annotations

from urllib.parse import quote

from alerting.channels.base import AppriseNotifier, register


@register
class FeishuNotifier(AppriseNotifier):
    """Options: ``token`` (the last path part of the robot webhook URL)."""

    type_name = "feishu"

    def apprise_url(self) -> str:
        """``feishu://token``."""
        return f"feishu://{quote(str(self.options['token']), safe='')}"
