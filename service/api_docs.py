"""API documentation (/docs, /openapi.json) for signed-in users only, with Swagger UI served by the service.

The schema names every route and parameter: no business for anonymous callers. Swagger UI's files come from
the ``swagger-ui-bundle`` package and are served from ``/docs/assets`` (an intranet has no CDN), and the page
starts it from a script file, so the content security policy needs no inline script.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from service.auth.deps import CurrentUser

_PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>yuqing 接口文档</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/start.js"></script>
</body>
</html>
"""
_START = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});\n'


def install_docs(app: FastAPI) -> None:
    """Routes for the schema and the documentation page (not part of the schema themselves)."""
    assets = Path(swagger_ui_bundle.swagger_ui_path)
    app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_schema(principal: CurrentUser) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs_page(principal: CurrentUser) -> HTMLResponse:
        return HTMLResponse(_PAGE)

    @app.get("/docs/start.js", include_in_schema=False)
    def docs_start() -> Response:
        return Response(_START, media_type="text/javascript")
