"""The installed ``smsguard.sending`` carries gateways, not test peers: the simulators, the process
helpers and the in-memory doubles live in ``tests/sending/sending_peers`` (issue 14)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import smsguard.sending

TEST_ONLY = ("_cmpp_simulator", "_http_simulator", "_peers", "_scenarios")


def test_no_simulator_or_double_is_shipped() -> None:
    for name in TEST_ONLY:
        assert importlib.util.find_spec(f"smsguard.sending.{name}") is None, name
    assert not {"MemoryEvents", "MemorySink"} & set(smsguard.sending.__all__)
    shipped = Path(smsguard.sending.__file__).parent
    for module in shipped.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        assert "sending_peers" not in text.replace("tests/sending/sending_peers", ""), module.name


def test_every_carrier_protocol_is_exported() -> None:
    for name in ("CmppGateway", "SgipGateway", "SmgpGateway", "SmppGateway", "HttpGateway", "LoopbackGateway"):
        assert name in smsguard.sending.__all__
