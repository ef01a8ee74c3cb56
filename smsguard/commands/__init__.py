"""Sub-commands of ``smsguard``; add a module here and list it in COMMANDS."""

from . import (
    audit,
    batch,
    billing,
    channel,
    config,
    console,
    key,
    keys,
    lexicon,
    numbers,
    policy,
    pumping,
    review,
    screen,
    serve,
    tenant,
    train,
)

COMMANDS = (screen, policy, lexicon, serve, tenant, key, keys, train, audit, review, batch, billing, console, channel,
            numbers, config, pumping)
