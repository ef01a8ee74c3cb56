"""Log-in for the server-rendered web UIs: the reviewer queue (``/review``) and the customer console (``/console``).

What the two share lives here once: argon2id password hashes, accounts (create, change, disable, authenticate
in constant time), the login page and the login / logout handlers with their audit events, server-side
sessions in SQL and litestar's CSRF middleware. What each keeps to itself is passed in: its accounts table,
roles and user object (``AccountsConfig``), its path, cookies, session keys and audit identity
(``WebAuthConfig``), and its pages (the UI renders ``login.html`` with ``TEMPLATES``' form macros).

    accounts = Accounts(AccountsConfig(table=review_users, roles=ROLES, user=to_user, error=UserError,
                                       exists_code="user.exists", not_found_code="user.not_found"))
    auth = WebAuth(WebAuthConfig(path="/review", accounts=accounts, ...), db=lambda: engine, render=ui.render)
    Router(path="/review", route_handlers=[*auth.route_handlers(), ...], middleware=auth.middleware(data_dir))
    # at app start: auth.register_store(app); in a handler: user = await auth.require(request)
    # (LoginRequired when nobody is logged in: the router answers it with the log-in redirect)

Failed log-ins are throttled per account and per client address (``_throttle``: waits, then a lock an admin
lifts with ``smsguard user unlock`` / ``smsguard console user unlock``); passwords are checked in a small pool of
low-priority threads (``_passwords.POOL``); CSRF tokens are bound to the logged-in session (``_csrf``).

``webauth.testing`` logs tests in through these forms.
"""

from . import _throttle as throttle
from ._accounts import Account, Accounts, AccountsConfig
from ._passwords import MIN_PASSWORD, hash_password, verify_password
from ._sessions import SqlSessionStore, load_secret
from ._status import HTTP_STATUS, http_headers, http_status
from ._throttle import LoginThrottle, ThrottlePolicy, ThrottleRule
from ._web import LOGIN_FAILED, TEMPLATES, LoginRequired, WebAuth, WebAuthConfig

__all__ = [
    "HTTP_STATUS",
    "LOGIN_FAILED",
    "MIN_PASSWORD",
    "TEMPLATES",
    "Account",
    "Accounts",
    "AccountsConfig",
    "LoginRequired",
    "LoginThrottle",
    "SqlSessionStore",
    "ThrottlePolicy",
    "ThrottleRule",
    "WebAuth",
    "WebAuthConfig",
    "hash_password",
    "http_headers",
    "http_status",
    "load_secret",
    "throttle",
    "verify_password",
]
