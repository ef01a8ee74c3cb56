"""Fixtures of this folder live in webauth_support.py, which the tests also import helpers from (a module
named conftest is ambiguous when the whole suite runs: every folder has one)."""

from webauth_support import *  # noqa: F403
