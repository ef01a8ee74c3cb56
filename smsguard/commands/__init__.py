"""Sub-commands of ``smsguard``; add a module here and list it in COMMANDS."""

from . import audit, batch, console, key, lexicon, policy, review, screen, serve, tenant, train

COMMANDS = (screen, policy, lexicon, serve, tenant, key, train, audit, review, batch, console)
