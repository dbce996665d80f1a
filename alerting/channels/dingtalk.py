"""DingTalk group robot (钉钉群机器人) through apprise."""

from __future__ import annotations

from urllib.parse import quote

from alerting.channels.base import AppriseNotifier, register


@register
class DingTalkNotifier(AppriseNotifier):
    """Options: ``token`` (access_token of the robot webhook), ``secret`` (加签 secret, optional)."""

    type_name = "dingtalk"

    def apprise_url(self) -> str:
        """``dingtalk://[secret@]token/``."""
        token = quote(str(self.options["token"]), safe="")
        secret = self.options.get("secret")
        if secret:
            return f"dingtalk://{quote(str(secret), safe='')}@{token}/"
        return f"dingtalk://{token}/"
