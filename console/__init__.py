"""The customer web console (``/console``): templates, contact lists, compose, batches and their reports.

``ConsoleUI(service, batch_api)`` is created by ``api.create_app`` next to the reviewer UI; its ``router`` is
mounted there and its ``start`` / ``stop`` run with the app. Accounts: ``console._users`` (CLI:
``smsguard console user create NAME --tenant T``).
"""

from ._routes import ConsoleUI
from ._users import (
           DEFAULT_TIME_ZONE,
           ConsoleUser,
           ConsoleUserError,
           authenticate,
           create_user,
           set_time_zone,
           tenant_time_zones,
)

__all__ = ["DEFAULT_TIME_ZONE", "ConsoleUI", "ConsoleUser", "ConsoleUserError", "authenticate", "create_user",
           "set_time_zone", "tenant_time_zones"]
