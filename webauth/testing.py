"""For tests that log in through a webauth form, over HTTP or in a browser.

The field names, the CSRF token and the element ids are the contract of ``webauth/forms.html`` and the login
handler; the tests of every UI drive them through these helpers. Nothing here imports a test dependency: the
client and the page are passed in (an ``httpx.Client``, a Playwright ``Page``).
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"')


def form_token(html: str) -> str | None:
    """The CSRF token the first webauth form of a rendered page carries (None: the page has no form)."""
    m = _TOKEN.search(html)
    return m.group(1) if m else None


def log_in(http: Any, path: str, username: str, password: str, *, next: str | None = None,
           headers: dict[str, str] | None = None) -> Any:
    """POST the login form of the UI under ``path`` (``/review``) with a CSRF token from its login page; returns
    the response (302 when the password was right, 401 when not). ``headers`` go with both requests (e.g. an
    ``Accept-Language``)."""
    token = form_token(http.get(f"{path}/login", headers=headers).text)
    data = {"username": username, "password": password, "_csrf_token": token or ""}
    return http.post(f"{path}/login", data=data if next is None else {**data, "next": next}, headers=headers)


def fill_login(page: Any, url: str, username: str, password: str) -> None:
    """Open ``url`` (a protected page redirects to the login form) and submit the form as ``username``; the caller
    then waits for the page it expects."""
    page.goto(url)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login")


def pin_language(context: Any, url: str, language: str) -> None:
    """Give a Playwright browser context the language cookie the switch (``POST {ui}/language``) sets, for tests that
    read the pages in one language whatever the browser's Accept-Language says."""
    context.add_cookies([{"name": "sg_lang", "value": language, "url": url}])


PHONE = {"width": 390, "height": 844}
"""The phone viewport the web UIs must fit (issue 19: 390 px wide)."""


def in_language(lang: str, msgid: str, **values: Any) -> str:
    """``msgid`` as the catalogue says it in ``lang`` (what a page in that language must show)."""
    from smsguard import i18n

    with i18n.use_language(lang):
        return i18n.gettext(msgid, **values)


def assert_fits_phone(page: Any, what: str) -> None:
    """No sideways scrolling at :data:`PHONE` width; names the elements that stick out when it fails."""
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate("""[...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > 391).slice(0, 8)
        .map(e => `${e.tagName}.${e.className}#${e.id} ${Math.round(e.getBoundingClientRect().right)}`)""")
    assert width <= PHONE["width"], f"{what}: {width} px wide at a 390 px viewport: {wide}"
