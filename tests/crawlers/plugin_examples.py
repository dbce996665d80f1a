"""A plug-in written the way a site integrator would: an API answering base64-wrapped JSON."""

from __future__ import annotations

import base64
import json
from typing import Any

from crawlers.plugins import SourcePlugin


class Base64Json(SourcePlugin):
    """The site wraps every answer in base64; the records inside are ordinary JSON."""

    def decode(self, response: Any, text: str) -> Any:
        return json.loads(base64.b64decode(text.strip()))
