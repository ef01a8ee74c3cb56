"""Fixtures of this folder live in review_ui_support.py, which the tests also import helpers from (a module
named conftest is ambiguous when the whole suite runs: every folder has one)."""

from review_ui_support import *  # noqa: F403
