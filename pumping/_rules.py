"""Allow-lists and blocks, in SQL: add, lift, list, and the active rules that name one message's subjects.

Every change is an audit event in the same transaction (``pumping.allowed``, ``pumping.blocked``,
``pumping.lifted``); an automatic block also emits the tenant's ``pumping.blocked`` webhook there
(``_webhook.emit``), so the row, its audit event and its webhook commit together or not at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, or_, select, update

from smsguard import audit
from smsguard.core import InputError, NotFoundError
from smsguard.phones import PhoneVault, mask, parse_phone

from . import _webhook
from ._tables import ACTIONS, SCOPES, pumping_rules

PREFIX_DIGITS = 7
"""A prefix is the first 7 national digits: the HLR segment (号段 + H0H1H2H3) that numbers are allotted in."""

OPERATOR_CODE = "pumping.operator"


@dataclasses.dataclass(frozen=True, slots=True)
class Subject:
    """What a rule names: its scope, the stored subject (a keyed hash for numbers and prefixes) and its label."""

    scope: str
    key: str
    label: str

    @property
    def audit_subject(self) -> str:
        return f"phone:{self.key}" if self.scope == "number" else f"pumping:{self.scope}:{self.key}"


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    id: int
    scope: str
    subject: str
    label: str
    action: str
    code: str
    source: str
    tenant_id: int | None
    note: str | None
    actor: str
    created_at: datetime
    expires_at: datetime | None
    lifted_at: datetime | None

    def active(self, at: datetime) -> bool:
        return self.lifted_at is None and (self.expires_at is None or self.expires_at > at)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("created_at", "expires_at", "lifted_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        del d["subject"]  # a keyed hash: of no use to a reader, and the label says what it is
        return d


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _rule(row: Any) -> Rule:
    m = row._mapping
    values = {f.name: m[f.name] for f in dataclasses.fields(Rule)}
    for k in ("created_at", "expires_at", "lifted_at"):
        values[k] = _aware(values[k])
    return Rule(**values)


def prefix_of(national: str) -> str:
    return national[:PREFIX_DIGITS]


def subject_of(vault: PhoneVault, scope: str, value: str | int, *, where: str = "subject") -> Subject:
    """The stored form of what an operator (or the guard) names: a number or a prefix by keyed hash."""
    if scope not in SCOPES:
        raise InputError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}", where="scope",
                         code="pumping.scope")
    text = str(value).strip()
    if scope == "number":
        phone = parse_phone(text, where=where)
        return Subject("number", vault.hash(phone.e164), mask(phone.e164))
    if scope == "prefix":
        digits = text.removeprefix("+86").replace(" ", "")
        if not (digits.isascii() and digits.isdigit() and len(digits) == PREFIX_DIGITS and digits[0] == "1"):
            raise InputError(f"a prefix is the first {PREFIX_DIGITS} digits of a mainland mobile number, e.g. 1380013",
                             where=where, code="pumping.prefix")
        return Subject("prefix", vault.prefix_hash(digits), digits + "*" * (11 - PREFIX_DIGITS))
    if scope == "tenant":
        if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**31:
            raise InputError("a tenant is named by its id", where=where, code="pumping.tenant")
        return Subject("tenant", str(int(text)), f"tenant {int(text)}")
    import ipaddress

    try:
        ip = str(ipaddress.ip_address(text))
    except ValueError:
        raise InputError(f"not an IP address: {text[:64]!r}", where=where, code="pumping.ip") from None
    return Subject("ip", ip, ip)


def active_rules(conn: Connection, subjects: Iterable[Subject], at: datetime) -> list[Rule]:
    """The rules in force now that name any of ``subjects``."""
    subjects = list(subjects)
    if not subjects:
        return []
    q = select(pumping_rules).where(
        pumping_rules.c.lifted_at.is_(None),
        or_(*(and_(pumping_rules.c.scope == s.scope, pumping_rules.c.subject == s.key) for s in subjects)),
    )
    return [r for r in map(_rule, conn.execute(q)) if r.active(at)]


def all_active(conn: Connection, at: datetime) -> list[Rule]:
    """Every rule in force at ``at`` (the guard's cache: a small table, lifted and expired rows left out)."""
    q = select(pumping_rules).where(
        pumping_rules.c.lifted_at.is_(None),
        or_(pumping_rules.c.expires_at.is_(None), pumping_rules.c.expires_at > at),
    )
    return [r for r in map(_rule, conn.execute(q)) if r.active(at)]


def add_rule(
    db: Engine, subject: Subject, action: str, *, actor: str, at: datetime, code: str = OPERATOR_CODE,
    source: str = "operator", tenant_id: int | None = None, note: str | None = None, seconds: int | None = None,
    details: dict[str, Any] | None = None,
) -> tuple[Rule, bool]:
    """Add an allow-list entry or a block, unless the same one is in force already. Returns (rule, created).
    An automatic block also emits the ``pumping.blocked`` webhook to ``tenant_id``."""
    if action not in ACTIONS:
        raise InputError(f"action must be allow or block, got {action!r}", where="action", code="pumping.action")
    expires = at + timedelta(seconds=seconds) if seconds else None
    with db.begin() as conn:
        for r in active_rules(conn, [subject], at):
            if r.action == action:
                return r, False
        rid = conn.execute(pumping_rules.insert().values(
            scope=subject.scope, subject=subject.key, label=subject.label, action=action, code=code, source=source,
            tenant_id=tenant_id, note=note, actor=actor, created_at=at, expires_at=expires,
        )).inserted_primary_key[0]
        payload = {"rule_id": rid, "scope": subject.scope, "label": subject.label, "code": code, "source": source,
                   "expires_at": expires.isoformat() if expires else None, **(details or {})}
        if subject.scope == "number":
            payload["phone_hash"] = subject.key  # the per-number trail indexes it
        if action == "block" and tenant_id is not None:
            _webhook.emit(conn, tenant_id=tenant_id, event_type="pumping.blocked",
                          subject=subject.audit_subject, payload=payload)
        audit.append(conn, event_type="pumping.blocked" if action == "block" else "pumping.allowed", actor=actor,
                     tenant_id=tenant_id, subject=subject.audit_subject, payload=payload)
        row = conn.execute(select(pumping_rules).where(pumping_rules.c.id == rid)).one()
    return _rule(row), True


def lift(db: Engine, subject: Subject | None = None, *, rule_id: int | None = None, actor: str, at: datetime,
         action: str | None = "block") -> list[Rule]:
    """Lift the rules in force on ``subject`` (blocks by default; ``action=None``: allow-list entries too), or
    the one rule ``rule_id``. NotFoundError when nothing was in force."""
    with db.begin() as conn:
        if rule_id is not None:
            rows = [_rule(r) for r in conn.execute(select(pumping_rules).where(pumping_rules.c.id == rule_id))]
            rows = [r for r in rows if r.active(at)]
        else:
            assert subject is not None
            rows = [r for r in active_rules(conn, [subject], at) if action is None or r.action == action]
        if not rows:
            what = "no rule in force on that subject" if rule_id is None else f"no rule {rule_id} in force"
            raise NotFoundError(what, where="rule" if rule_id is not None else "subject", code="pumping.not_found")
        for r in rows:
            conn.execute(update(pumping_rules).where(pumping_rules.c.id == r.id).values(lifted_at=at, lifted_by=actor))
        for r in rows:
            subj = Subject(r.scope, r.subject, r.label)
            payload: dict[str, Any] = {"rule_id": r.id, "scope": r.scope, "label": r.label, "action": r.action,
                                       "code": r.code}
            if r.scope == "number":
                payload["phone_hash"] = r.subject
            audit.append(conn, event_type="pumping.lifted", actor=actor, tenant_id=r.tenant_id,
                         subject=subj.audit_subject, payload=payload)
    return [dataclasses.replace(r, lifted_at=at) for r in rows]


def list_rules(db: Engine, *, at: datetime, scope: str | None = None, action: str | None = None,
               include_lifted: bool = False, limit: int = 1000) -> list[Rule]:
    q = select(pumping_rules).order_by(pumping_rules.c.id.desc()).limit(limit)
    if scope is not None:
        q = q.where(pumping_rules.c.scope == scope)
    if action is not None:
        q = q.where(pumping_rules.c.action == action)
    if not include_lifted:
        q = q.where(pumping_rules.c.lifted_at.is_(None))
    with db.connect() as conn:
        rules = [_rule(r) for r in conn.execute(q)]
    return rules if include_lifted else [r for r in rules if r.active(at)]
