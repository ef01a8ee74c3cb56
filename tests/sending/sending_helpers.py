"""Helpers shared by the sending tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from sending_peers.processes import (
    CMPP_ACCOUNT,
    HTTP_TOKEN,
    SGIP_ACCOUNT,
    SGIP_NODE,
    SMGP_ACCOUNT,
    SMPP_ACCOUNT,
    Peer,
    cmpp_peer,
    http_peer,
    sgip_peer,
    smgp_peer,
    smpp_peer,
)

from smsguard.sending import (
    CmppGateway,
    Gateway,
    HttpGateway,
    HttpProviderConfig,
    LoopbackGateway,
    SgipGateway,
    SmgpGateway,
    SmppGateway,
)

T = TypeVar("T")
# cmpp: CMPP 3.0 negotiated with a 3.0 ISMG; cmpp2: the same client against a 2.0-only ISMG (falls back).
KINDS = ["smpp", "cmpp", "cmpp2", "smgp", "sgip", "http", "loopback"]
# How to start the peer process of each kind (loopback needs none).
PEERS: dict[str, Callable[..., Peer]] = {
    "smpp": smpp_peer,
    "cmpp": cmpp_peer,
    "cmpp2": functools.partial(cmpp_peer, max_version=0x20),
    "smgp": smgp_peer,
    "sgip": sgip_peer,
    "http": http_peer,
}


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    """Run one coroutine to completion (no pytest-asyncio in this project)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def make_gateway(kind: str, port: int, name: str | None = None, sp_port: int = 0, **options: Any) -> Gateway:
    """An unstarted gateway of ``kind`` on the local peer at ``port`` (``sp_port``: SGIP's listener)."""
    name = name or kind
    if kind == "smpp":
        return SmppGateway(name, "127.0.0.1", port, *SMPP_ACCOUNT, **options)
    if kind in ("cmpp", "cmpp2"):
        return CmppGateway(name, "127.0.0.1", port, *CMPP_ACCOUNT, src_id="106900", **options)
    if kind == "smgp":
        return SmgpGateway(name, "127.0.0.1", port, *SMGP_ACCOUNT, src_id="106900", **options)
    if kind == "sgip":
        return SgipGateway(name, "127.0.0.1", port, *SGIP_ACCOUNT, node_id=SGIP_NODE, sp_number="106900",
                           listen_port=sp_port, **options)
    if kind == "http":
        config = HttpProviderConfig(
            f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {HTTP_TOKEN}"}, poll_interval=0.05
        )
        return HttpGateway(name, config, **options)
    return LoopbackGateway(name, **options)


