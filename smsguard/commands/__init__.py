"""Sub-commands of ``smsguard``; add a module here and list it in COMMANDS."""

from . import lexicon, policy, screen, serve

COMMANDS = (screen, policy, lexicon, serve)
