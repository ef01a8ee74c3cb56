"""The reviewer web queue (``/review``): pages, templates and static assets, served by the API's app.

``ReviewUI(service)`` is created by ``api.create_app``; its ``router`` is mounted there and its ``start`` /
``stop`` run with the app.
"""

from ._routes import ReviewUI

__all__ = ["ReviewUI"]
