"""The HTTP API (litestar): ``create_app`` builds the application around one Engine."""

from ._app import create_app

__all__ = ["create_app"]
