"""WeCom group robot (企业微信群机器人) through apprise."""

from __future__ import annotations

from urllib.parse import quote

from alerting.channels.base import AppriseNotifier, register


@register
class WeComNotifier(AppriseNotifier):
    """Options: ``key`` (the key= parameter of the robot webhook URL)."""

    type_name = "wecom"

    def apprise_url(self) -> str:
        """``wecombot://key``."""
        return f"wecombot://{quote(str(self.options['key']), safe='')}"
