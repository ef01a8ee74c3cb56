"""``PumpingGuard``: may this one message be sent now? Velocity per number, prefix, tenant and client IP across
every tenant and signature, the prefix's verification conversion, and the allow-lists and blocks in SQL.

The order of a check:

1. SQL: the rules in force on the number, its prefix, the tenant and the IP. An allow-list entry exempts its
   scope (a number also its prefix: the operator vouches for it); a block of a scope not exempted refuses.
2. Redis, one atomic script: the number's, prefix's, IP's and tenant's sliding windows, and for verification
   codes the prefix's conversion (codes verified / codes sent, from ``record_sent`` / ``record_verified``).
   Over a limit is a *throttle* (429 with ``Retry-After``); a prefix with many unverified codes and a low
   conversion is throttled too but keeps a trickle (one message per ``pumping_throttle_seconds``) so a real
   user's code can still convert. Every refused attempt is a *strike* on its subject.
3. A number, prefix or IP with ``pumping_block_after`` strikes within the conversion window is *blocked*: a
   row in SQL (it survives a Redis FLUSHDB), a ``pumping.blocked`` audit event and webhook, in one
   transaction. A prefix merely busy with good conversion, and a tenant over its own velocity, stay throttled.

A number that verified a code lately (``record_verified``) is spared the prefix's throttles and blocks: the
collateral damage of blocking a pumped segment falls on numbers never seen to convert.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine

from smsguard.core import InputError, LimitError, Settings
from smsguard.phones import Phone, PhoneVault, parse_phone

from . import _rules
from ._rules import Rule, Subject, prefix_of, subject_of
from ._window import Scope, Windows

Action = Literal["allow", "throttle", "block"]

ALLOW = "pumping.ok"
NUMBER_VELOCITY = "pumping.number_velocity"
PREFIX_VELOCITY = "pumping.prefix_velocity"
PREFIX_LOW_CONVERSION = "pumping.prefix_low_conversion"
TENANT_VELOCITY = "pumping.tenant_velocity"
IP_VELOCITY = "pumping.ip_velocity"
BLOCKED = "pumping.blocked"  # an operator's block (automatic blocks keep the code that caused them)

RULES_MAX_AGE = 5.0
"""Seconds a process trusts its copy of the rules in force without looking at SQL again."""

VELOCITY_CODES = {"number": NUMBER_VELOCITY, "prefix": PREFIX_VELOCITY, "tenant": TENANT_VELOCITY, "ip": IP_VELOCITY}
ESCALATES = {NUMBER_VELOCITY: "number", PREFIX_LOW_CONVERSION: "prefix", IP_VELOCITY: "ip"}
"""Throttles that become blocks after enough strikes (a busy prefix that converts, or a busy tenant, do not)."""

WHERE = {"number": "phone", "prefix": "phone", "tenant": "tenant", "ip": "client_ip"}
"""A refusal's ``where``: the input at fault (the API maps ``phone`` to its own field, e.g. ``$.to``)."""

_WHAT = {"number": "this number", "prefix": "this number's prefix", "tenant": "this tenant", "ip": "this client IP"}


class PumpingRefused(LimitError):
    """A message refused by the anti-pumping guard: 429 at the API edge, ``Retry-After`` when throttled."""

    code = "pumping.refused"


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The guard's answer for one message."""

    action: Action
    code: str
    """``pumping.ok``, or the reason: ``pumping.number_velocity``, ``pumping.prefix_velocity``,
    ``pumping.prefix_low_conversion``, ``pumping.ip_velocity``, ``pumping.tenant_velocity``, ``pumping.blocked``."""
    message: str
    where: str | None = None
    """``phone``, ``client_ip`` or ``tenant``: the input the refusal is about."""
    retry_after: int | None = None
    """Seconds after which a throttled message may be tried again (None for allow and block)."""
    scope: str | None = None
    rule_id: int | None = None
    """The SQL rule (block) behind a block."""

    @property
    def allowed(self) -> bool:
        return self.action == "allow"

    def error(self, *, phone_where: str | None = None) -> PumpingRefused:
        """This refusal as the project's error (429 at the API edge); ``phone_where`` renames ``phone``."""
        where = phone_where if self.where == "phone" and phone_where else self.where
        return PumpingRefused(self.message, where=where, code=self.code, retry_after=self.retry_after)

    def raise_if_refused(self, *, phone_where: str | None = None) -> None:
        if not self.allowed:
            raise self.error(phone_where=phone_where)


class PumpingGuard:
    """Anti-pumping and anti-bombing checks on one deployment's SQL and Redis.

    ``PumpingGuard(db=rt.db, redis=rt.redis, vault=rt.vault, settings=rt.settings)``; ``clock`` (seconds since
    the epoch) is for simulations. Thread-safe: it holds only the handles and the registered scripts.
    """

    def __init__(
        self, *, db: Engine, redis: Any, vault: PhoneVault, settings: Settings, namespace: str | None = None,
        clock: Callable[[], float] = time.time, actor: str = "system:pumping",
    ) -> None:
        self.db = db
        self.redis = redis
        self.vault = vault
        self.settings = settings
        self.ns = f"{namespace or settings.redis_namespace}:pumping"
        self.clock = clock
        self.actor = actor
        self._windows = Windows(redis)
        self._rules_lock = threading.Lock()
        self._rules_index: dict[tuple[str, str], list[Rule]] = {}
        self._rules_version: bytes | None = None
        self._rules_at: float | None = None

    # -- the rules in force, cached -----------------------------------------------------------------
    def _rules_on(self, subjects: list[Subject], at: datetime) -> list[Rule]:
        """The rules in force on ``subjects``, from a per-process copy of the (small) set of rules in force.
        The copy is reloaded from SQL when the rules' version in Redis moved (every change bumps it), when Redis
        lost it, and at least every ``RULES_MAX_AGE`` seconds (a writer that died between its commit and the
        bump): SQL stays the truth, Redis only says when to look again."""
        version = self.redis.get(self._key("rules", "version"))
        with self._rules_lock:
            stale = (self._rules_version != version or self._rules_at is None
                     or time.monotonic() - self._rules_at > RULES_MAX_AGE)
            if stale:
                with self.db.connect() as conn:
                    loaded = _rules.all_active(conn, at)
                index: dict[tuple[str, str], list[Rule]] = {}
                for r in loaded:
                    index.setdefault((r.scope, r.subject), []).append(r)
                self._rules_index, self._rules_version, self._rules_at = index, version, time.monotonic()
            index = self._rules_index
        return [r for s in subjects for r in index.get((s.scope, s.key), ()) if r.active(at)]

    def _rules_changed(self) -> None:
        self.redis.incr(self._key("rules", "version"))
        with self._rules_lock:
            self._rules_at = None

    # -- keys --------------------------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return ":".join((self.ns, *parts))

    def _good_key(self, number_hash: str) -> str:
        return self._key("good", number_hash)

    def _conversion_keys(self, prefix_hash: str) -> tuple[str, str]:
        return self._key("c", "sent", prefix_hash), self._key("c", "ok", prefix_hash)

    def _scope(self, subject: Subject) -> Scope:
        s = self.settings
        limit, window = {
            "number": (s.pumping_number_limit, s.pumping_number_window),
            "prefix": (s.pumping_prefix_limit, s.pumping_prefix_window),
            "tenant": (s.pumping_tenant_limit, s.pumping_tenant_window),
            "ip": (s.pumping_ip_limit, s.pumping_ip_window),
        }[subject.scope]
        return Scope(subject.scope, self._key("v", subject.scope, subject.key),
                     self._key("strike", subject.scope, subject.key), window, limit)

    def _subjects(self, tenant_id: int, phone: Phone, client_ip: str | None) -> list[Subject]:
        national = phone.national
        prefix = prefix_of(national)
        out = [
            Subject("number", self.vault.hash(phone.e164), phone.masked),
            Subject("prefix", self.vault.prefix_hash(prefix), prefix + "*" * (len(national) - len(prefix))),
            Subject("tenant", str(tenant_id), f"tenant {tenant_id}"),
        ]
        if client_ip:
            # an address we cannot parse (a proxy's odd header) is not counted per IP
            with contextlib.suppress(InputError):
                out.append(subject_of(self.vault, "ip", client_ip))
        return out

    # -- the check ---------------------------------------------------------------------------------
    def check(
        self, tenant_id: int, phone: str | Phone, signature: str = "", client_ip: str | None = None,
        kind: str = "verification",
    ) -> Decision:
        """May this message go now? Counts it in every window when allowed. ``phone`` as the client sent it
        (``InvalidPhone`` if it is not a number) or parsed; ``signature`` is not part of any key on purpose:
        pumping is counted across every tenant and signature."""
        p = phone if isinstance(phone, Phone) else parse_phone(phone, where="phone")
        now = self.clock()
        at = datetime.fromtimestamp(now, UTC)
        subjects = self._subjects(tenant_id, p, client_ip)
        by_scope = {s.scope: s for s in subjects}
        rules = self._rules_on(subjects, at)
        allowed = {r.scope for r in rules if r.action == "allow"}
        exempt = set(allowed) | ({"prefix"} if "number" in allowed else set())
        blocks = [r for r in rules if r.action == "block" and r.scope not in exempt]
        if blocks:
            decision = self._blocked(blocks, by_scope["number"])
            if decision is not None:
                return decision
        scopes = [self._scope(s) for s in subjects if s.scope not in exempt]
        scopes.sort(key=lambda sc: ("number", "prefix", "ip", "tenant").index(sc.name))
        if not scopes:
            return Decision("allow", ALLOW, "allow-listed")
        conversion = None
        if kind == "verification" and "prefix" not in exempt:
            sent_key, ok_key = self._conversion_keys(by_scope["prefix"].key)
            conversion = (sent_key, ok_key, self._key("trickle", by_scope["prefix"].key),
                          self._good_key(by_scope["number"].key), self._key("strike", "conv", by_scope["prefix"].key))
        s = self.settings
        out = self._windows.check(
            scopes, now=now, conversion=conversion, min_unverified=s.pumping_conversion_min_unverified,
            threshold=s.pumping_conversion_threshold, conversion_window=s.pumping_conversion_window,
            throttle_seconds=s.pumping_throttle_seconds, strike_ttl=s.pumping_conversion_window,
        )
        if out.status in (0, 3):
            return Decision("allow", ALLOW, "throttled prefix: trickle" if out.status == 3 else "ok")
        if out.status == 2:
            subject, code = by_scope["prefix"], PREFIX_LOW_CONVERSION
            message = (f"too many unverified codes to this number's prefix ({out.verified} of {out.sent} verified in "
                       f"{s.pumping_conversion_window} s)")
        else:
            assert out.scope is not None
            subject, code = by_scope[out.scope.name], VELOCITY_CODES[out.scope.name]
            message = (f"too many messages to {_WHAT[out.scope.name]} across all senders "
                       f"(at most {out.scope.limit} in {out.scope.window} s)")
            if out.scope.name in ("tenant", "ip"):
                message = message.replace("to this", "from this")
        if ESCALATES.get(code) == subject.scope and out.strikes >= s.pumping_block_after:
            rule = self._block(subject, code, tenant_id=tenant_id, at=at,
                               details={"strikes": out.strikes, "sent": out.sent, "verified": out.verified,
                                        "signature": signature, "kind": kind})
            return Decision("block", code, f"{message}: blocked", WHERE[subject.scope], None, subject.scope, rule.id)
        return Decision("throttle", code, f"{message}; retry in {out.retry_after} s", WHERE[subject.scope],
                        out.retry_after, subject.scope)

    def _blocked(self, blocks: list[Rule], number: Subject) -> Decision | None:
        """The decision for the blocks in force, or None when a trusted number is spared its prefix's block."""
        order = ("number", "ip", "tenant", "prefix")
        blocks = sorted(blocks, key=lambda r: order.index(r.scope))
        if all(r.scope == "prefix" for r in blocks) and self.redis.exists(self._good_key(number.key)):
            return None
        r = blocks[0]
        code = BLOCKED if r.source == "operator" else r.code
        return Decision("block", code, f"{_WHAT[r.scope]} is blocked ({r.code})", WHERE[r.scope], None, r.scope, r.id)

    def _block(self, subject: Subject, code: str, *, tenant_id: int, at: datetime, details: dict[str, Any]) -> Rule:
        seconds = self.settings.pumping_block_seconds or None
        rule, created = _rules.add_rule(self.db, subject, "block", actor=self.actor, at=at, code=code, source="auto",
                                        tenant_id=tenant_id, seconds=seconds, details=details)
        if created:
            self._rules_changed()
        return rule

    # -- conversion --------------------------------------------------------------------------------
    def record_sent(self, tenant_id: int, phone: str | Phone, signature: str = "") -> None:
        """A verification code was handed over for sending (``/v1/verify``): the denominator of its prefix's
        conversion. Call it after the send is committed, once per code. A prefix's conversion counts numbers,
        not codes (a number counts once per window): re-sends and a bombed number are not many numbers."""
        p = phone if isinstance(phone, Phone) else parse_phone(phone, where="phone")
        sent_key, _ = self._conversion_keys(self.vault.prefix_hash(prefix_of(p.national)))
        self._windows.bump(sent_key, now=self.clock(), window=self.settings.pumping_conversion_window,
                           once=self._key("c", "sent1", self.vault.hash(p.e164)))

    def record_verified(self, tenant_id: int, phone: str | Phone, signature: str = "") -> None:
        """A code sent to ``phone`` was checked successfully (``/v1/verify/check``): the numerator of its
        prefix's conversion (once per number and window), and the number is trusted for
        ``pumping_good_number_days``."""
        p = phone if isinstance(phone, Phone) else parse_phone(phone, where="phone")
        number = self.vault.hash(p.e164)
        _, ok_key = self._conversion_keys(self.vault.prefix_hash(prefix_of(p.national)))
        self._windows.bump(ok_key, now=self.clock(), window=self.settings.pumping_conversion_window,
                           once=self._key("c", "ok1", number))
        self.redis.set(self._good_key(number), "1", ex=self.settings.pumping_good_number_days * 86400)

    def conversion(self, phone: str | Phone) -> dict[str, Any]:
        """The prefix's codes sent and verified in the conversion window (what the rule judges)."""
        p = phone if isinstance(phone, Phone) else parse_phone(phone, where="phone")
        sent_key, ok_key = self._conversion_keys(self.vault.prefix_hash(prefix_of(p.national)))
        now, window = self.clock(), self.settings.pumping_conversion_window
        sent = Windows.total(self.redis, sent_key, now=now, window=window)
        verified = Windows.total(self.redis, ok_key, now=now, window=window)
        return {"sent": sent, "verified": verified, "conversion": round(verified / sent, 4) if sent else None}

    # -- operators ---------------------------------------------------------------------------------
    def subject(self, scope: str, value: str | int) -> Subject:
        """What an operator names (``number 13800138000``, ``prefix 1380013``, ``tenant 3``, ``ip 10.0.0.5``)."""
        return subject_of(self.vault, scope, value)

    def allow(self, scope: str, value: str | int, *, actor: str, note: str | None = None,
              seconds: int | None = None) -> Rule:
        """Allow-list a number, a prefix, a tenant or an IP (its checks and automatic blocks are skipped)."""
        rule, _ = _rules.add_rule(self.db, self.subject(scope, value), "allow", actor=actor, at=self._now(),
                                  note=note, seconds=seconds)
        self._rules_changed()
        return rule

    def block(self, scope: str, value: str | int, *, actor: str, note: str | None = None,
              seconds: int | None = None) -> Rule:
        """An operator's block (``pumping.blocked``) until lifted, or for ``seconds``."""
        subject = self.subject(scope, value)
        tenant_id = int(subject.key) if scope == "tenant" else None
        rule, _ = _rules.add_rule(self.db, subject, "block", actor=actor, at=self._now(), note=note,
                                  seconds=seconds, tenant_id=tenant_id)
        self._rules_changed()
        return rule

    def lift(self, scope: str | None = None, value: str | int | None = None, *, rule_id: int | None = None,
             actor: str, allow_too: bool = False) -> list[Rule]:
        """Lift the blocks on a subject (and its allow-list entries with ``allow_too``), or one rule by id; the
        subject's strikes and, for a prefix, its conversion counts start afresh."""
        subject = self.subject(scope, value) if scope is not None and value is not None else None
        lifted = _rules.lift(self.db, subject, rule_id=rule_id, actor=actor, at=self._now(),
                             action=None if allow_too or rule_id is not None else "block")
        self._rules_changed()
        for r in lifted:
            keys = [self._key("strike", r.scope, r.subject)]
            if r.scope == "prefix":
                keys += [*self._conversion_keys(r.subject), self._key("strike", "conv", r.subject),
                         self._key("trickle", r.subject)]
            self.redis.delete(*keys)
        return lifted

    def rules(self, *, scope: str | None = None, action: str | None = None, include_lifted: bool = False,
              limit: int = 1000) -> list[Rule]:
        return _rules.list_rules(self.db, at=self._now(), scope=scope, action=action, include_lifted=include_lifted,
                                 limit=limit)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)
