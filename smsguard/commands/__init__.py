"""Sub-commands of ``smsguard``; add a module here and list it in COMMANDS."""

from . import key, lexicon, policy, screen, serve, tenant, train

COMMANDS = (screen, policy, lexicon, serve, tenant, key, train)
