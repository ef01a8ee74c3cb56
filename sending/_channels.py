"""Carrier channels as configuration: a typed ``channels.yaml`` naming each connection to an SMSC / ISMG /
HTTP provider, and the small registry that turns one entry into a :class:`Gateway`.

A channel names its protocol, where it connects, the account, a *reference* to its password (an
environment variable or a secret file — never the value), its source number / service id, window and
throughput, which carriers and number ranges it serves, its priority and weight (failover order), and
its receipt policy. An error names the key path, e.g. ``channels.yaml: $.channels[1].port``.

Protocols are looked up in ``ADAPTERS``; a new adapter registers itself with :func:`register_adapter`
(``register_adapter("sgip", build_sgip)``) and is then usable from the file like the built-in ones.
With no channels file, one loopback channel is configured (the embedded default: nothing leaves the machine).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from smsguard.core import SmsguardError, named_variables
from smsguard.sending._failover import Router, carrier_of
from smsguard.sending._gateway import Gateway

CARRIERS = ("mobile", "unicom", "telecom", "other")


class ChannelsError(SmsguardError):
    """The channels file cannot be used; ``where`` names the file and key path."""

    code = "channels.invalid"


class ChannelSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One carrier connection (one entry of ``channels:``)."""

    name: str
    protocol: str
    host: str = ""
    port: int = 0
    url: str = ""
    """HTTP providers: the base URL (``https://sms.example.com``)."""
    account: str = ""
    """SMPP system_id, CMPP/SGIP/SMGP SP id or login name."""
    password_env: str | None = None
    """Name of the environment variable holding the password / shared secret / HTTP token."""
    password_file: str | None = None
    """Path of a file holding it (first line; e.g. a mounted Kubernetes or Docker secret)."""
    source: str = ""
    """Source number (SMPP source_addr, CMPP src_id / 接入号)."""
    service_id: str = ""
    """CMPP service id (业务代码)."""
    window: int = 32
    """Submits in flight on this connection (written, response not yet read)."""
    rate: float = 0.0
    """Messages per second, shared by every gateway process of the deployment (0 = no limit)."""
    carriers: list[str] = msgspec.field(default_factory=list)
    """Carriers this channel serves (mobile / unicom / telecom / other); empty = every carrier."""
    ranges: list[str] = msgspec.field(default_factory=list)
    """Number prefixes this channel serves (``1380013``, ``8613800``), tried before carrier routes."""
    priority: int = 100
    """Failover order: lower first; a channel is tried only when every lower one is down or exhausted."""
    weight: int = 1
    """Share of the traffic among channels of the same priority."""
    receipts: Literal["all_parts", "last_part"] = "all_parts"
    """A long message's outcome: from the receipts of all its parts, or only from its last part's receipt."""
    receipt_deadline: float = 72 * 3600.0
    """Seconds after submit a message waits for its receipt; then its outcome is ``unknown``."""
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    """Adapter-specific settings (HTTP field mapping, enquire-link interval, ...), see the README."""

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() or c == ":" for c in self.name):
            raise ValueError("name must be non-empty, without spaces or ':'")


class ChannelsFile(msgspec.Struct, forbid_unknown_fields=True):
    channels: list[ChannelSpec]


AdapterFactory = Callable[[ChannelSpec, str], Gateway]
"""``factory(spec, password) -> Gateway``: builds one adapter from its (validated) spec."""

ADAPTERS: dict[str, AdapterFactory] = {}
_NEEDS: dict[str, tuple[str, ...]] = {}


def register_adapter(protocol: str, factory: AdapterFactory, *, needs: Iterable[str] = ("host", "port")) -> None:
    """Make ``protocol`` usable in the channels file; ``needs`` are the spec fields it cannot work without."""
    ADAPTERS[protocol] = factory
    _NEEDS[protocol] = tuple(needs)


def _options(spec: ChannelSpec, allowed: Iterable[str]) -> dict[str, Any]:
    unknown = sorted(set(spec.options) - set(allowed))
    if unknown:
        raise ChannelsError(f"unknown option {unknown[0]!r} for protocol {spec.protocol}", where="options")
    return dict(spec.options)


_LINK_OPTIONS = ("active_test_interval", "response_timeout", "connect_timeout", "throttle_pause")


def _smpp(spec: ChannelSpec, password: str) -> Gateway:
    from smsguard.sending._smpp import SmppGateway

    opts = _options(spec, ("system_type", "enquire_link_interval", "response_timeout"))
    return SmppGateway(spec.name, spec.host, spec.port, spec.account, password, source_addr=spec.source,
                       window=spec.window, **opts)


def _cmpp(spec: ChannelSpec, password: str) -> Gateway:
    from smsguard.sending._cmpp_client import CmppGateway

    opts = _options(spec, (*_LINK_OPTIONS, "version"))
    if "version" in opts:  # the highest version to offer at CONNECT: 3.0 (0x30) falls back to 2.0 (0x20) if refused
        opts["version"] = {"3.0": 0x30, "2.0": 0x20, 0x30: 0x30, 0x20: 0x20}.get(opts["version"], -1)
        if opts["version"] == -1:
            raise ChannelsError("version must be \"3.0\" or \"2.0\"", where="options.version")
    return CmppGateway(spec.name, spec.host, spec.port, spec.account, password, src_id=spec.source,
                       service_id=spec.service_id, window=spec.window, **opts)


def _smgp(spec: ChannelSpec, password: str) -> Gateway:
    from smsguard.sending._smgp_client import SmgpGateway

    opts = _options(spec, _LINK_OPTIONS)
    return SmgpGateway(spec.name, spec.host, spec.port, spec.account, password, src_id=spec.source,
                       service_id=spec.service_id, window=spec.window, **opts)


def _sgip(spec: ChannelSpec, password: str) -> Gateway:
    from smsguard.sending._sgip_client import SgipGateway

    # Unicom's SMG connects back to us for Deliver and Report: listen_host / listen_port is where it reaches us.
    opts = _options(spec, ("response_timeout", "connect_timeout", "throttle_pause", "node_id", "corp_id",
                           "listen_host", "listen_port"))
    if not isinstance(opts.get("node_id"), int):
        raise ChannelsError("node_id (the SP's node number from Unicom) is required", where="options.node_id")
    return SgipGateway(spec.name, spec.host, spec.port, spec.account, password, sp_number=spec.source,
                       service_type=spec.service_id, window=spec.window, **opts)


def _http(spec: ChannelSpec, password: str) -> Gateway:
    from smsguard.sending._http import HttpGateway, HttpProviderConfig

    opts = dict(spec.options)
    auth = opts.pop("auth_header", "Authorization")
    scheme = opts.pop("auth_scheme", "Bearer")
    headers = dict(opts.pop("headers", {}))
    if password:
        headers[auth] = f"{scheme} {password}".strip()
    try:
        config = msgspec.convert({"base_url": spec.url, "headers": headers, **opts}, HttpProviderConfig)
    except msgspec.ValidationError as e:
        raise ChannelsError(str(e), where="options") from None
    return HttpGateway(spec.name, config, window=spec.window)


def _loopback(spec: ChannelSpec, password: str) -> Gateway:
    from smsguard.sending._loopback import LoopbackGateway

    _options(spec, ())
    return LoopbackGateway(spec.name, window=spec.window)


register_adapter("smpp", _smpp)
register_adapter("cmpp", _cmpp)
register_adapter("smgp", _smgp)
register_adapter("sgip", _sgip)
register_adapter("http", _http, needs=("url",))
register_adapter("loopback", _loopback, needs=())

DEFAULT_CHANNELS = (ChannelSpec(name="loopback", protocol="loopback", window=64, receipt_deadline=60.0),)
"""The embedded default: no file, one loopback channel (accepts everything, reports it delivered)."""


def load_channels(path: Path | None) -> tuple[ChannelSpec, ...]:
    """The channels of ``path`` (``None``: the embedded loopback default), validated."""
    if path is None:
        return DEFAULT_CHANNELS
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ChannelsError(f"cannot read channels file: {e.strerror}", where=str(path),
                            code="channels.unreadable") from None
    return parse_channels(raw, name=path.name)


def parse_channels(raw: bytes, *, name: str = "channels.yaml") -> tuple[ChannelSpec, ...]:
    try:
        parsed = msgspec.yaml.decode(raw, type=ChannelsFile)
    except msgspec.ValidationError as e:
        message, _, path = str(e).partition(" - at `")
        raise ChannelsError(message, where=f"{name}: {path.rstrip('`') or '$'}", code="channels.schema") from None
    except msgspec.DecodeError as e:
        raise ChannelsError(f"not valid YAML: {e}", where=name, code="channels.syntax") from None
    specs = tuple(parsed.channels)
    if not specs:
        raise ChannelsError("at least one channel is needed", where=f"{name}: $.channels", code="channels.value")
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        def fail(key: str, message: str, i: int = i) -> None:
            raise ChannelsError(message, where=f"{name}: $.channels[{i}].{key}", code="channels.value")

        if spec.name in seen:
            fail("name", f"channel {spec.name!r} is named twice")
        seen.add(spec.name)
        if spec.protocol not in ADAPTERS:
            fail("protocol", f"unknown protocol {spec.protocol!r}; known: {', '.join(sorted(ADAPTERS))}")
        for key in _NEEDS[spec.protocol]:
            if not getattr(spec, key):
                fail(key, f"required for protocol {spec.protocol}")
        if spec.port and not 0 < spec.port < 65536:
            fail("port", f"must be between 1 and 65535, got {spec.port}")
        if spec.window < 1:
            fail("window", "must be at least 1")
        if spec.rate < 0:
            fail("rate", "must not be negative")
        if spec.weight < 1:
            fail("weight", "must be at least 1")
        if spec.receipt_deadline <= 0:
            fail("receipt_deadline", "must be a positive number of seconds")
        for j, carrier in enumerate(spec.carriers):
            if carrier not in CARRIERS:
                fail(f"carriers[{j}]", f"unknown carrier {carrier!r}; known: {', '.join(CARRIERS)}")
        for j, prefix in enumerate(spec.ranges):
            if not prefix.isdigit():
                fail(f"ranges[{j}]", f"a number range is a prefix of digits, got {prefix!r}")
        if spec.password_env and spec.password_file:
            fail("password_env", "give password_env or password_file, not both")
    # a number no channel serves would wait in the outbox forever: its batch could never finish
    served = {c for s in specs if not s.ranges for c in (s.carriers or CARRIERS)} | {
        c for s in specs for c in s.carriers}
    missing = [c for c in CARRIERS if c not in served]
    if missing:
        raise ChannelsError(
            f"no channel serves carrier {missing[0]!r}: list it in a channel's carriers, or leave one channel's "
            "carriers and ranges empty (a catch-all)", where=f"{name}: $.channels", code="channels.value")
    return specs


def resolve_password(spec: ChannelSpec, env: Mapping[str, str] | None = None, *, name: str = "channels.yaml",
                     index: int = 0) -> str:
    """The channel's password from its reference; a missing variable or file is an error naming the key."""
    env = named_variables() if env is None else env
    where = f"{name}: $.channels[{index}]"
    if spec.password_env:
        value = env.get(spec.password_env)
        if not value:
            raise ChannelsError(f"environment variable {spec.password_env} is not set",
                                where=f"{where}.password_env", code="channels.secret")
        return value
    if spec.password_file:
        try:
            return Path(spec.password_file).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as e:
            reason = getattr(e, "strerror", None) or "empty file"
            raise ChannelsError(f"cannot read secret file {spec.password_file}: {reason}",
                                where=f"{where}.password_file", code="channels.secret") from None
    return ""


def build_gateway(spec: ChannelSpec, env: Mapping[str, str] | None = None, *, name: str = "channels.yaml",
                  index: int = 0) -> Gateway:
    """The adapter for one channel (not yet connected)."""
    password = resolve_password(spec, env, name=name, index=index)
    try:
        return ADAPTERS[spec.protocol](spec, password)
    except ChannelsError as e:
        raise ChannelsError(e.message, where=f"{name}: $.channels[{index}].{e.where}", code=e.code) from None
    except (TypeError, ValueError) as e:  # an option of the wrong type reaching the adapter
        raise ChannelsError(str(e), where=f"{name}: $.channels[{index}].options", code="channels.value") from None


class ChannelRouter(Router):
    """Routes a number to channels: those serving its number range first, then those serving its carrier,
    each group in priority order, channels of one priority shuffled by weight per message."""

    def __init__(self, specs: Iterable[ChannelSpec], *, rng: random.Random | None = None) -> None:
        self.specs = tuple(specs)
        super().__init__({"default": [s.name for s in self.specs]})
        self._rng = rng or random.Random()
        self._ranged = [s for s in self.specs if s.ranges]
        # per carrier: its channels, and their order when no two share a priority (no weighted draw to make);
        # routing was ~4 % of the gateway thread, per message, at ~1,000 msgs/s (bench/pipeline.py)
        self._by_carrier: dict[str, list[ChannelSpec]] = {}
        self._fixed: dict[str, tuple[str, ...]] = {}

    def _order(self, specs: list[ChannelSpec]) -> list[str]:
        keyed = [(s.priority, self._rng.random() ** (1.0 / s.weight) * -1, s.name) for s in specs]
        return [name for *_, name in sorted(keyed)]

    def _carrier_specs(self, carrier: str) -> list[ChannelSpec]:
        found = self._by_carrier.get(carrier)
        if found is None:
            found = self._by_carrier[carrier] = [
                s for s in self.specs if not s.ranges and (not s.carriers or carrier in s.carriers)]
            if len({s.priority for s in found}) == len(found):
                self._fixed[carrier] = tuple(s.name for s in sorted(found, key=lambda s: s.priority))
        return found

    def candidates(self, phone: str) -> tuple[str, ...]:
        carrier = carrier_of(phone)
        by_carrier = self._carrier_specs(carrier)
        by_range: list[ChannelSpec] = []
        if self._ranged:
            digits = phone.lstrip("+")
            local = digits[2:] if digits.startswith("86") and len(digits) == 13 else digits
            by_range = [s for s in self._ranged if any(local.startswith(p) or digits.startswith(p) for p in s.ranges)]
        if not by_range and carrier in self._fixed:
            return self._fixed[carrier]
        out = self._order(by_range) + self._order(by_carrier)
        return tuple(dict.fromkeys(out))
