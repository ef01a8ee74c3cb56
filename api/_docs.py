"""The API documentation pages under ``/schema``, working with no internet.

Litestar's render plugins load their JavaScript, CSS, favicon and fonts from CDNs by default; a deployment
behind a firewall (most of our customers' are) got a blank page. Here every asset comes from the app itself,
at ``/schema/assets/…``, out of two pinned PyPI packages that ship them: ``swagger-ui-bundle-v2`` (Swagger UI
5, which reads OpenAPI 3.1) and ``openapi-ui-bundles`` (ReDoc 2.2, RapiDoc 9.3). Scalar and Stoplight
Elements have no such package, so they are not offered.

Pages: ``/schema`` (ReDoc), ``/schema/redoc``, ``/schema/swagger`` (with "Try it out"), ``/schema/rapidoc``,
``/schema/openapi.json``, ``/schema/openapi.yaml``. ``docs/calling.md`` (curl, Python, Java) is the
document's introduction, so every page shows it first.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import openapi_ui_bundles
from litestar import Request, get
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import (
    JsonRenderPlugin,
    OpenAPIRenderPlugin,
    RapidocRenderPlugin,
    RedocRenderPlugin,
    SwaggerRenderPlugin,
    YamlRenderPlugin,
)
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from smsguard.core import PROJECT_ROOT

SCHEMA_PATH = "/schema"
ASSETS = f"{SCHEMA_PATH}/assets"
# Searched in order: Swagger UI's files, then ReDoc's, then RapiDoc's (no file name is in two of them).
_ASSET_DIRS = (Path(str(swagger_ui_path)), openapi_ui_bundles.redoc.static_path, openapi_ui_bundles.rapidoc.static_path)
_FAVICON = f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>"
CALLING_PAGE = PROJECT_ROOT / "docs" / "calling.md"


_REDOC_JS = openapi_ui_bundles.redoc.static_path / "redoc.standalone.js"
_REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"  # its "API docs by Redocly" footer; the file is shipped too


@get(f"{ASSETS}/redoc.offline.js", media_type="text/javascript", include_in_schema=False, sync_to_thread=False,
     cache_control=CacheControlHeader(max_age=86400))
def redoc_js() -> bytes:
    """ReDoc's bundle with its one hard-coded CDN address (a logo) pointed at the app's copy of that logo."""
    return _redoc_offline()


@cache
def _redoc_offline() -> bytes:
    body = _REDOC_JS.read_bytes()
    assert _REDOC_LOGO in body, "the ReDoc bundle changed: check it for CDN addresses again"
    return body.replace(_REDOC_LOGO, f"{ASSETS}/logo-mini.svg".encode())


class _OfflineRapidoc(RapidocRenderPlugin):
    """RapiDoc without its Google fonts (``load-fonts``), every operation on one page like the other UIs."""

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        page = super().render(request, openapi_schema)
        return page.replace(b"<rapi-doc ", b'<rapi-doc load-fonts="false" render-style="read" ', 1)


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """ReDoc first (served at ``/schema`` itself), each pointed at the app's own copy of its files."""
    common = {"favicon": _FAVICON}
    return [
        RedocRenderPlugin(path="/redoc", js_url=f"{ASSETS}/redoc.offline.js", google_fonts=False, **common),
        SwaggerRenderPlugin(
            path="/swagger",
            js_url=f"{ASSETS}/swagger-ui-bundle.js",
            css_url=f"{ASSETS}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
            **common,
        ),
        _OfflineRapidoc(path="/rapidoc", js_url=f"{ASSETS}/rapidoc-min.js", **common),
        JsonRenderPlugin(),
        YamlRenderPlugin(),
    ]


def assets() -> list[Any]:
    """``/schema/assets/<file>``: the UIs' JavaScript, CSS and icons, cached for a day by browsers."""
    return [redoc_js, create_static_files_router(
        path=ASSETS, directories=list(_ASSET_DIRS), include_in_schema=False, name="schema-assets",
        cache_control=CacheControlHeader(max_age=86400),
    )]


def description(summary: str) -> str:
    """The document's introduction: ``summary`` and then the calling page (curl, Python, Java), when the
    source tree is there (a wheel carries no docs/; the pages then say where to find it)."""
    if CALLING_PAGE.is_file():
        return f"{summary}\n\n{CALLING_PAGE.read_text('utf-8')}"
    return f"{summary}\n\nHow to call it from curl, Python and Java: docs/calling.md in the source tree."
