"""The reviewer web queue (pages, templates, static assets), served by the API application.

Lands with the human-review issue; the engine already marks uncertain messages ``review``.
"""
