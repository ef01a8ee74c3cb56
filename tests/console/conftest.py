"""Fixtures of this folder live in console_support.py, which the tests also import helpers from (a module
named conftest is ambiguous when the whole suite runs: every folder has one)."""

from console_support import *  # noqa: F403
