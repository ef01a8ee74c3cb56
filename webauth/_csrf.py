"""CSRF tokens bound to the session: a form token is valid only with the session cookie it was issued for.

Litestar's CSRF middleware is a double-submit cookie: any (cookie, token) pair it ever issued is accepted with
any session, so an anonymous visitor's pair, or one session's pair, passes in another session (where an attacker
can set a cookie: a sibling subdomain, a man-in-the-middle on plain HTTP). Here the cookie keeps litestar's
signed random value, and the token in the forms is that value's random part with an HMAC of it *and* the
session cookie's value (for a logged-in session; an anonymous one binds to nothing, it can only log in). A new
session (every login rotates the id) needs a new token: the page after the login redirect carries one.
"""

from __future__ import annotations

import hashlib
import hmac
from secrets import compare_digest
from typing import Any

from litestar.config.csrf import CSRFConfig
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware.csrf import CSRF_SECRET_LENGTH, CSRFMiddleware, generate_csrf_token
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState


class SessionCsrfMiddleware(CSRFMiddleware):
    """``CSRFMiddleware`` whose form tokens are bound to the logged-in session: the ``session_cookie``'s value when
    the session holds a user under ``session_key``. It runs inside the session middleware (it reads the session)."""

    def __init__(self, app: ASGIApp, config: CSRFConfig, session_cookie: str, session_key: str) -> None:
        super().__init__(app, config)
        self.session_cookie = session_cookie
        self.session_key = session_key

    def _logged_in_session(self, scope: Scope, request: Any) -> str:
        """The session id when the session names a user, else "" (an anonymous visitor can only log in, and litestar
        gives every visitor a session id at the first page, which the token cannot know in advance)."""
        session = scope.get("session")
        if isinstance(session, dict) and session.get(self.session_key):
            return request.cookies.get(self.session_cookie) or ""
        return ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request: Any = scope["litestar_app"].request_class(scope=scope, receive=receive)
        cookie = request.cookies.get(self.config.cookie_name)
        secret = self._decode_csrf_token(cookie) if cookie else None
        session = self._logged_in_session(scope, request)
        state = ScopeState.from_scope(scope)
        if request.method in self.config.safe_methods:
            if secret is None:  # first visit, or a cookie this server did not sign: a new one
                cookie = generate_csrf_token(secret=self.config.secret)
                secret = cookie[:CSRF_SECRET_LENGTH]
                send = self._setting_cookie(send, cookie)
            state.csrf_token = self.form_token(secret, session)
            await self.app(scope, receive, send)
            return
        sent = request.headers.get(self.config.header_name)
        if not sent and request.content_type[0] in {RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART}:
            sent = (await request.form()).get("_csrf_token")
        if secret is None or not isinstance(sent, str) or not compare_digest(sent, self.form_token(secret, session)):
            raise PermissionDeniedException("CSRF token verification failed")
        state.csrf_token = sent
        await self.app(scope, receive, send)

    def form_token(self, secret: str, session: str) -> str:
        """The token forms carry: the cookie's random part, then an HMAC of it and the session cookie."""
        mac = hmac.new(self.config.secret.encode(), f"{secret}\x00{session}".encode(), hashlib.sha256).hexdigest()
        return secret + mac

    def _setting_cookie(self, send: Send, cookie: str) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                self._set_cookie_if_needed(message=message, token=cookie)
            await send(message)

        return wrapped

