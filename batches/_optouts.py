"""Opt-outs, opt-ins, complaints and MO replies.

Scopes (rows of ``optouts``, keyed by the phone's keyed hash):

* ``signature`` — the tenant's one signature (``tenant_id``, ``signature``): an MO reply to that signature;
* ``tenant`` — every signature of the tenant (``tenant_id``, ``""``): an API call, a complaint;
* ``global`` — every tenant (``0``, ``""``): an MO to an extension we cannot attribute, or an admin.

SQL is the truth: the release worker looks every chunk's numbers up in SQL (``opted_out_among``). Redis
holds one set per scope (``<ns>:oo:<tenant id>:<signature>``) that its hand-over script checks as well,
for the opt-outs taken between that lookup and the hand-over. Order of writes, so that no crash ever lets
a message through to a number that opted out: an opt-OUT is added to Redis first, then committed to SQL
(with its audit event, in the same transaction), then acknowledged; an opt-IN is committed first and
removed from Redis after. A crash in between leaves the number opted out (the safe side) until
``rebuild_sets`` runs (at start and whenever the release worker finds Redis lost its data).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from smsguard import audit, webhooks
from smsguard.phones import Phone, parse_phone

from ._common import Context, now
from ._policy import BatchesPolicy
from ._tables import complaints, inbound_messages, optouts, sender_codes

_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)
GLOBAL = 0


def set_key(ns: str, tenant_id: int, signature: str) -> str:
    return f"{ns}:oo:{tenant_id}:{signature}"


def keys_for(ns: str, tenant_id: int, signature: str) -> tuple[str, str, str]:
    """The three sets a recipient of (tenant, signature) is checked against: global, tenant, signature."""
    return set_key(ns, GLOBAL, ""), set_key(ns, tenant_id, ""), set_key(ns, tenant_id, signature)


def opted_out_among(conn: Connection, tenant_id: int, signature: str, hashes: Iterable[str]) -> set[str]:
    """The hashes among ``hashes`` that SQL, the truth, has opted out for (tenant, signature): global, tenant
    or signature scope. The release step asks this for every chunk, so a Redis that lost its sets never
    lets a message through to a number that opted out."""
    scope = ((optouts.c.tenant_id == GLOBAL) & (optouts.c.signature == "")) | (
        (optouts.c.tenant_id == tenant_id) & optouts.c.signature.in_(["", signature])
    )
    wanted = list(dict.fromkeys(hashes))
    out: set[str] = set()
    for i in range(0, len(wanted), 900):  # SQLite's bound-parameter limit, and short IN lists for the planner
        out.update(
            conn.execute(
                select(optouts.c.phone_hash).where(
                    optouts.c.opted_out, optouts.c.phone_hash.in_(wanted[i : i + 900]), scope
                )
            ).scalars()
        )
    return out


def _upsert(conn: Connection, values: dict[str, Any]) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(optouts).values(**values)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id", "signature", "phone_hash"],
            set_={
                "opted_out": stmt.excluded.opted_out,
                "source": stmt.excluded.source,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )


def _scope_name(tenant_id: int, signature: str) -> str:
    return "global" if tenant_id == GLOBAL else ("signature" if signature else "tenant")


def change(
    ctx: Context,
    conn: Connection,
    *,
    phone: Phone,
    tenant_id: int,
    signature: str,
    opted_out: bool,
    source: str,
    actor: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """Record one opt-out / opt-in row and its audit event inside ``conn``'s transaction.

    For an opt-out the caller must have added the number to Redis BEFORE (``redis_add``); for an opt-in it
    removes it AFTER the commit (``redis_remove``)."""
    h = ctx.vault.hash(phone.e164)
    _upsert(
        conn,
        {
            "tenant_id": tenant_id,
            "signature": signature,
            "phone_hash": h,
            "phone_enc": ctx.vault.encrypt(phone.e164),
            "phone_masked": phone.masked,
            "opted_out": opted_out,
            "source": source,
            "updated_at": now(),
        },
    )
    audit.append(
        conn,
        event_type="optout" if opted_out else "optin",
        actor=actor,
        tenant_id=tenant_id or None,
        subject=f"phone:{h}",
        payload={
            "phone_hash": h,
            "phone": phone.masked,
            "scope": _scope_name(tenant_id, signature),
            "signature": signature,
            "source": source,
            **(extra or {}),
        },
    )
    if tenant_id:  # the tenant's webhooks hear of it in this transaction (a platform-wide one has no tenant)
        webhooks.emit(conn, tenant_id=tenant_id, event_type="optout.added" if opted_out else "optout.removed",
                      subject=f"phone:{h}", payload={"phone": phone.masked, "phone_hash": h,
                                                     "scope": _scope_name(tenant_id, signature),
                                                     "signature": signature, "source": source})


def redis_add(ctx: Context, scopes: Iterable[tuple[int, str]], phone_hash: str) -> None:
    pipe = ctx.redis.pipeline(transaction=False)
    for tenant_id, signature in scopes:
        pipe.sadd(set_key(ctx.namespace, tenant_id, signature), phone_hash)
    pipe.execute()


def redis_remove(ctx: Context, scopes: Iterable[tuple[int, str]], phone_hash: str) -> None:
    pipe = ctx.redis.pipeline(transaction=False)
    for tenant_id, signature in scopes:
        pipe.srem(set_key(ctx.namespace, tenant_id, signature), phone_hash)
    pipe.execute()


def opt_out(
    ctx: Context, *, phone: Phone, tenant_id: int, signature: str = "", source: str = "api", actor: str
) -> None:
    h = ctx.vault.hash(phone.e164)
    redis_add(ctx, [(tenant_id, signature)], h)  # before the commit: never a window where SQL has it and Redis not
    with ctx.db.begin() as conn:
        change(
            ctx, conn, phone=phone, tenant_id=tenant_id, signature=signature, opted_out=True, source=source, actor=actor
        )


def opt_in(
    ctx: Context, *, phone: Phone, tenant_id: int, signature: str = "", source: str = "api", actor: str
) -> list[str]:
    """Opt back in: the signature scope given and the tenant-wide scope (never the global one, which only an
    admin lifts). Returns the scopes lifted."""
    h = ctx.vault.hash(phone.e164)
    scopes = [(tenant_id, signature)] + ([(tenant_id, "")] if signature else [])
    lifted = []
    with ctx.db.begin() as conn:
        for t, s in scopes:
            exists = conn.execute(
                select(optouts.c.opted_out).where(
                    optouts.c.tenant_id == t, optouts.c.signature == s, optouts.c.phone_hash == h
                )
            ).scalar_one_or_none()
            if exists or (t, s) == scopes[0]:
                change(ctx, conn, phone=phone, tenant_id=t, signature=s, opted_out=False, source=source, actor=actor)
                lifted.append(_scope_name(t, s))
    redis_remove(ctx, scopes, h)  # after the commit: until then the number stays out (the safe side)
    return lifted


def status(ctx: Context, *, phone: Phone, tenant_id: int, signature: str = "") -> dict[str, bool]:
    h = ctx.vault.hash(phone.e164)
    with ctx.db.connect() as conn:
        rows = conn.execute(
            select(optouts.c.tenant_id, optouts.c.signature, optouts.c.opted_out).where(
                optouts.c.phone_hash == h, optouts.c.tenant_id.in_([GLOBAL, tenant_id])
            )
        ).all()
    out = {"global": False, "tenant": False, "signature": False}
    for t, s, o in rows:
        if t == GLOBAL and not s:
            out["global"] |= o
        elif t == tenant_id and not s:
            out["tenant"] |= o
        elif t == tenant_id and s == signature:
            out["signature"] |= o
    return out


# -- MO replies -----------------------------------------------------------------------------------------------


def classify(policy: BatchesPolicy, text: str) -> str:
    """``opt_out`` | ``opt_in`` | ``complaint`` | ``none`` for an MO reply, per policy keywords."""
    folded = _NOISE.sub("", text).lower()
    if any(k in text or k in folded for k in policy.complaint_keywords):
        return "complaint"
    if folded in {k.lower() for k in policy.optout_keywords}:
        return "opt_out"
    if folded in {k.lower() for k in policy.optin_keywords}:
        return "opt_in"
    return "none"


def sender_code(ctx: Context, tenant_id: int, signature: str) -> str:
    """The extension (4+ digits) of (tenant, signature): appended to the channel number, so an MO reply tells
    whose message it answers. Allocated on first use (its own transaction; a race retries)."""
    from sqlalchemy.exc import IntegrityError

    for _ in range(20):
        with ctx.db.connect() as conn:
            code = conn.execute(
                select(sender_codes.c.code).where(
                    sender_codes.c.tenant_id == tenant_id, sender_codes.c.signature == signature
                )
            ).scalar_one_or_none()
            if code is not None:
                return code
            n = conn.execute(select(func.count()).select_from(sender_codes)).scalar_one()
        try:
            with ctx.db.begin() as conn:
                conn.execute(insert(sender_codes).values(code=f"{n + 1:04d}", tenant_id=tenant_id, signature=signature))
            return f"{n + 1:04d}"
        except IntegrityError:
            continue  # another process took that code (or this pair) meanwhile: look again
    raise RuntimeError("could not allocate a sender code")


def resolve_sender(conn: Connection, to: str) -> tuple[int, str] | None:
    """(tenant id, signature) whose extension ends ``to`` (the number the handset replied to)."""
    digits = "".join(c for c in to if c.isdigit())
    if not digits:
        return None
    best = None
    for code, tenant_id, signature in conn.execute(
        select(sender_codes.c.code, sender_codes.c.tenant_id, sender_codes.c.signature)
    ):
        if digits.endswith(code) and (best is None or len(code) > len(best[0])):
            best = (code, tenant_id, signature)
    return (best[1], best[2]) if best else None


def handle_mo(
    ctx: Context,
    *,
    phone_raw: str,
    text: str,
    tenant_id: int | None = None,
    signature: str | None = None,
    to: str = "",
    gateway: str = "api",
    ref: str | None = None,
    actor: str,
) -> dict[str, Any]:
    """Act on an MO reply and record it; returns ``{action, scope, phone}``. Everything is committed before
    this returns (the caller acknowledges the MO only then); a repeat (same gateway + ref) changes nothing."""
    phone = parse_phone(phone_raw)
    h = ctx.vault.hash(phone.e164)
    action = classify(ctx.policy.batches, text)
    with ctx.db.connect() as conn:
        if tenant_id is None or (not signature and to):
            found = resolve_sender(conn, to) if to else None
            if found and (tenant_id is None or found[0] == tenant_id):
                tenant_id, signature = found[0], signature or found[1]
        if ref:
            seen = conn.execute(
                select(inbound_messages.c.action).where(
                    inbound_messages.c.gateway == gateway, inbound_messages.c.ref == ref
                )
            ).scalar_one_or_none()
            if seen is not None:
                return {"action": seen, "scope": None, "phone": phone.masked, "repeat": True}
    tid = GLOBAL if tenant_id is None else tenant_id
    sig = (signature or "").strip("【】")[:32] if tid != GLOBAL else ""
    scope: tuple[int, str] = (tid, sig)
    if action == "complaint":
        scope = (tid, "")  # a complaint opts the number out of every signature of the tenant
    if action in ("opt_out", "complaint"):
        redis_add(ctx, [scope], h)
    with ctx.db.begin() as conn:
        if tid != GLOBAL:  # the reply first, then what it caused (same subject: delivered in this order)
            webhooks.emit(conn, tenant_id=tid, event_type="mo.received", subject=f"phone:{h}",
                          payload={"phone": phone.masked, "phone_hash": h, "text": text[:2000], "to": to[:32],
                                   "signature": sig, "action": action, "gateway": gateway[:64], "ref": ref})
        if action in ("opt_out", "complaint"):
            change(
                ctx,
                conn,
                phone=phone,
                tenant_id=scope[0],
                signature=scope[1],
                opted_out=True,
                source="complaint" if action == "complaint" else "mo",
                actor=actor,
                extra={"gateway": gateway, "keyword": text[:40]},
            )
        if action == "complaint":
            conn.execute(
                insert(complaints).values(
                    tenant_id=tid,
                    phone_hash=h,
                    phone_masked=phone.masked,
                    signature=sig,
                    text=text[:2000],
                    source="mo",
                    ref=None,
                    created_at=now(),
                )
            )
            audit.append(
                conn,
                event_type="complaint",
                actor=actor,
                tenant_id=tid or None,
                subject=f"phone:{h}",
                payload={"phone_hash": h, "phone": phone.masked, "signature": sig, "source": "mo", "text": text[:500]},
            )
        conn.execute(
            insert(inbound_messages).values(
                tenant_id=tid,
                signature=sig,
                phone_hash=h,
                phone_masked=phone.masked,
                text=text[:2000],
                gateway=gateway[:64],
                to_number=to[:32],
                action=action,
                ref=ref,
                created_at=now(),
                phone_enc=ctx.vault.encrypt(phone.e164) if tid != GLOBAL else None,
            )
        )
    if action == "opt_in":
        lifted = opt_in(ctx, phone=phone, tenant_id=tid, signature=sig, source="mo", actor=actor)
        return {"action": action, "scope": ",".join(lifted), "phone": phone.masked}
    return {"action": action, "scope": _scope_name(*scope) if action != "none" else None, "phone": phone.masked}


def record_complaint(
    ctx: Context,
    *,
    phone: Phone,
    tenant_id: int,
    signature: str = "",
    text: str = "",
    source: str = "api",
    ref: str | None = None,
    actor: str,
) -> dict[str, Any]:
    """A complaint (e.g. forwarded by a carrier): recorded, and the number opted out tenant-wide. Idempotent
    on ``ref``."""
    h = ctx.vault.hash(phone.e164)
    redis_add(ctx, [(tenant_id, "")], h)
    with ctx.db.begin() as conn:
        if ref is not None:
            old = conn.execute(
                select(complaints.c.id).where(complaints.c.tenant_id == tenant_id, complaints.c.ref == ref)
            ).scalar_one_or_none()
            if old is not None:
                return {"id": old, "repeat": True}
        cid = conn.execute(
            insert(complaints)
            .values(
                tenant_id=tenant_id,
                phone_hash=h,
                phone_masked=phone.masked,
                signature=signature,
                text=text[:2000],
                source=source,
                ref=ref,
                created_at=now(),
            )
            .returning(complaints.c.id)
        ).scalar_one()
        change(
            ctx,
            conn,
            phone=phone,
            tenant_id=tenant_id,
            signature="",
            opted_out=True,
            source="complaint",
            actor=actor,
            extra={"complaint_id": cid},
        )
        audit.append(
            conn,
            event_type="complaint",
            actor=actor,
            tenant_id=tenant_id,
            subject=f"phone:{h}",
            payload={
                "phone_hash": h,
                "phone": phone.masked,
                "signature": signature,
                "source": source,
                "complaint_id": cid,
            },
        )
    return {"id": cid, "repeat": False}


# -- rebuilding Redis from SQL -------------------------------------------------------------------------------


def rebuild_sets(ctx: Context) -> dict[str, int]:
    """Make the Redis opt-out sets match SQL. Additive first (every opted-out row is SADDed, so a concurrent
    opt-out is never lost), then members SQL does not have are re-checked in SQL one by one and removed."""
    ns = ctx.namespace
    tmp_suffix = ":rebuild"
    added = 0
    with ctx.db.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=5000).execute(
            select(optouts.c.tenant_id, optouts.c.signature, optouts.c.phone_hash).where(optouts.c.opted_out)
        )
        for part in result.partitions():
            pipe = ctx.redis.pipeline(transaction=False)
            for t, s, h in part:
                key = set_key(ns, t, s)
                pipe.sadd(key, h)
                pipe.sadd(key + tmp_suffix, h)
            pipe.execute()
            added += len(part)
    removed = 0
    for raw in ctx.redis.scan_iter(match=f"{ns}:oo:*", count=1000):
        key = raw.decode()
        if key.endswith(tmp_suffix):
            continue
        extras = [m.decode() for m in ctx.redis.sdiff(key, key + tmp_suffix)]
        if extras:
            _, _, rest = key.partition(f"{ns}:oo:")
            t, _, s = rest.partition(":")
            with ctx.db.connect() as conn:
                still = set(
                    conn.execute(
                        select(optouts.c.phone_hash).where(
                            optouts.c.tenant_id == int(t),
                            optouts.c.signature == s,
                            optouts.c.opted_out,
                            optouts.c.phone_hash.in_(extras),
                        )
                    ).scalars()
                )
            gone = [h for h in extras if h not in still]
            if gone:
                ctx.redis.srem(key, *gone)
                removed += len(gone)
        ctx.redis.delete(key + tmp_suffix)
    return {"opted_out": added, "removed": removed}
