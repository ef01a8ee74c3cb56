"""Helpers shared by the sending tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from sending import CmppGateway, Gateway, HttpGateway, HttpProviderConfig, LoopbackGateway, SmppGateway
from sending._peers import CMPP_ACCOUNT, HTTP_TOKEN, SMPP_ACCOUNT

T = TypeVar("T")
KINDS = ["smpp", "cmpp", "http", "loopback"]


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    """Run one coroutine to completion (no pytest-asyncio in this project)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def make_gateway(kind: str, port: int, name: str | None = None, **options: Any) -> Gateway:
    name = name or kind
    if kind == "smpp":
        return SmppGateway(name, "127.0.0.1", port, *SMPP_ACCOUNT, **options)
    if kind == "cmpp":
        return CmppGateway(name, "127.0.0.1", port, *CMPP_ACCOUNT, src_id="106900", **options)
    if kind == "http":
        config = HttpProviderConfig(
            f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {HTTP_TOKEN}"}, poll_interval=0.05
        )
        return HttpGateway(name, config, **options)
    return LoopbackGateway(name, **options)


