"""Swagger UI served from the app itself (the swagger-ui-bundle wheel): no CDN, works offline."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

SWAGGER_UI_STATIC_URL = "/docs/static/"

docs_assets = Blueprint("docs_assets", __name__)


@docs_assets.get("/docs/static/<path:filename>")
def swagger_ui_asset(filename: str) -> Response:
    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)
