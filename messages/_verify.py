"""Verification codes (issue 17, point 2): ``POST /v1/verify`` and ``POST /v1/verify/check``.

The platform makes the code (``secrets.choice`` over the tenant's alphabet and length) and keeps only its keyed
hash (HMAC-SHA256 with the deployment's hash key, over a per-code salt and the code). The code is sent as a
``verification`` message through ``send_message`` (so screening, caps, opt-outs, budget and channels apply),
with the tenant's template (its one variable gets the code) or a built-in text. Checking counts the attempt
first (a conditional UPDATE: at most ``max_attempts``, however many requests race), compares with
``hmac.compare_digest``, and marks the code used in the same transaction: single use. The code is also sealed
in its batch (``batches.seal_secret``, the phone vault's key): once the gateway took the message (its sent
record or delivery report is committed, ``batches.drop_handed_secrets``) the digits leave the stored text, so
SQL holds only the keyed hash from then on; a code used up, expired or failed before that is redacted then.

Conversion (codes verified / codes sent) is counted in SQL per tenant, signature, number prefix (first 7
digits) and UTC day by ``record_code_sent`` / ``record_code_verified``, which also tell the listeners added
with ``add_verification_listener`` (the anti-pumping guard) after the commit.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import string
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from smsguard import audit, batches
from smsguard.core import ConflictError, InputError, LimitError, NotFoundError, SmsguardError
from smsguard.phones import Phone, parse_phone

from ._messages import _iso, _now, message_batch, phone_of, resume_message, send_message
from ._tables import verifications, verify_conversion, verify_settings

PREFIX_DIGITS = 7
DIGITS = string.digits
DEFAULTS = {"length": 6, "alphabet": DIGITS, "ttl_seconds": 300, "max_attempts": 5, "template_id": None,
            "signature": None}
DEFAULT_TEXT = "【{signature}】您的验证码是{code}，{minutes}分钟内有效，请勿泄露给他人。"
REDACTED = "●"


class VerifyError(InputError):
    code = "verify.invalid"


class VerifyMismatch(InputError):
    code = "verify.mismatch"


class VerifyExpired(ConflictError):
    code = "verify.expired"


class VerifyUsed(ConflictError):
    code = "verify.used"


class TooManyAttempts(LimitError):
    code = "verify.too_many_attempts"


@dataclasses.dataclass(frozen=True, slots=True)
class VerificationEvent:
    """What a listener is told after the commit: ``event`` is ``sent`` or ``verified``."""

    event: str
    tenant_id: int
    phone: Phone
    signature: str
    prefix: str


_listeners: list[Callable[[VerificationEvent], None]] = []


def add_verification_listener(listener: Callable[[VerificationEvent], None]) -> None:
    """Call ``listener`` after every code sent and every code verified (the anti-pumping guard's
    ``record_sent`` / ``record_verified``). A listener's failure is logged, never the caller's."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_verification_listener(listener: Callable[[VerificationEvent], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def _tell(event: VerificationEvent) -> None:
    import logging

    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # the guard is advisory here: the code was sent / verified whatever it says
            logging.getLogger("smsguard.messages").exception("verification listener failed")


def prefix_of(phone: Phone) -> str:
    """The number's first 7 national digits: its carrier block (HLR segment)."""
    return phone.national[:PREFIX_DIGITS]


def _bump(conn: Connection, tenant_id: int, signature: str, prefix: str, *, sent: int, verified: int) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(verify_conversion).values(tenant_id=tenant_id, signature=signature, prefix=prefix,
                                                    day=_now().strftime("%Y-%m-%d"), sent=sent, verified=verified)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["tenant_id", "signature", "prefix", "day"],
        set_={"sent": verify_conversion.c.sent + sent, "verified": verify_conversion.c.verified + verified},
    ))


def record_code_sent(conn: Connection, tenant_id: int, phone: Phone, signature: str) -> VerificationEvent:
    """A code for this number / prefix / signature was sent: counted in ``conn``'s transaction. Pass the
    returned event to ``notify`` after the commit."""
    _bump(conn, tenant_id, signature, prefix_of(phone), sent=1, verified=0)
    return VerificationEvent("sent", tenant_id, phone, signature, prefix_of(phone))


def record_code_verified(conn: Connection, tenant_id: int, phone: Phone, signature: str) -> VerificationEvent:
    """A code for this number / prefix / signature was verified: counted in ``conn``'s transaction."""
    _bump(conn, tenant_id, signature, prefix_of(phone), sent=0, verified=1)
    return VerificationEvent("verified", tenant_id, phone, signature, prefix_of(phone))


notify = _tell


# -- settings -----------------------------------------------------------------------------------------------


def get_settings(ctx: batches.Context, tenant_id: int) -> dict[str, Any]:
    with ctx.db.connect() as conn:
        row = conn.execute(select(verify_settings).where(verify_settings.c.tenant_id == tenant_id)).one_or_none()
    if row is None:
        return dict(DEFAULTS)
    return {k: getattr(row, k) for k in DEFAULTS}


def set_settings(ctx: batches.Context, tenant_id: int, *, actor: str, **values: Any) -> dict[str, Any]:
    """Set the tenant's code length (4–8), alphabet (2–62 distinct ASCII letters/digits), expiry (30 s–1 day),
    attempt limit (1–20), template (an approved verification template with one variable) and signature."""
    current = get_settings(ctx, tenant_id)
    new = {**current, **{k: v for k, v in values.items() if k in DEFAULTS}}
    alphabet = new["alphabet"]
    if not 4 <= new["length"] <= 8:
        raise VerifyError("length must be 4 to 8", where="$.length", code="verify.length")
    if not (2 <= len(set(alphabet)) == len(alphabet) <= 62 and all(c in string.ascii_letters + DIGITS
                                                                    for c in alphabet)):
        raise VerifyError("alphabet must be 2 to 62 distinct ASCII letters or digits", where="$.alphabet",
                          code="verify.alphabet")
    if not 30 <= new["ttl_seconds"] <= 86_400:
        raise VerifyError("ttl_seconds must be 30 to 86400", where="$.ttl_seconds", code="verify.ttl")
    if not 1 <= new["max_attempts"] <= 20:
        raise VerifyError("max_attempts must be 1 to 20", where="$.max_attempts", code="verify.max_attempts")
    if new["template_id"] is not None:
        _code_variable(ctx, tenant_id, new["template_id"], where="$.template_id")
    with ctx.db.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(verify_settings).values(tenant_id=tenant_id, updated_at=_now(), **new)
        conn.execute(stmt.on_conflict_do_update(index_elements=["tenant_id"],
                                                set_={**new, "updated_at": stmt.excluded.updated_at}))
        audit.append(conn, event_type="verify.settings", actor=actor, tenant_id=tenant_id,
                     subject=f"tenant:{tenant_id}", payload=new)
    return new


def _code_variable(ctx: batches.Context, tenant_id: int, template_id: int, *, where: str) -> str:
    try:
        tpl = batches.get_template(ctx, tenant_id, template_id)
    except NotFoundError as e:
        e.where = where
        raise
    if tpl["kind"] != "verification" or len(tpl["variables"]) != 1:
        raise VerifyError(f"template {template_id} must be a verification template with exactly one variable "
                          "(the code)", where=where, code="verify.template")
    return tpl["variables"][0]


# -- sending and checking -------------------------------------------------------------------------------------


def _code_hash(ctx: batches.Context, salt: str, code: str) -> str:
    return ctx.vault.hash(f"verify:{salt}:{code}")  # HMAC-SHA256 with the deployment's hash key


def start_verification(
    ctx: batches.Context,
    tenant_id: int,
    *,
    to: str,
    template_id: int | None = None,
    signature: str | None = None,
    actor: str,
    guarded: bool = False,
    bind: Callable[[Connection, str], None] | None = None,
) -> dict[str, Any]:
    """Make a code, keep its hash, send it; returns the verification (never the code).

    The verification row (the code's hash) is made in the transaction that makes the message, with
    ``bind(conn, "verification:<id>")`` (an Idempotency-Key): a crash leaves the three or none of them, and
    ``resume_verification`` finishes the send."""
    phone = phone_of(to)
    conf = get_settings(ctx, tenant_id)
    template_id = template_id if template_id is not None else conf["template_id"]
    signature = (signature or conf["signature"] or "").strip().strip("【】") or None
    code = "".join(secrets.choice(conf["alphabet"]) for _ in range(conf["length"]))
    if template_id is not None:
        var = _code_variable(ctx, tenant_id, template_id, where="$.template_id")
        send = {"template_id": template_id, "variables": {var: code}}
    elif signature is None:
        raise VerifyError("give signature (or a template_id, or set one in /v1/verify/settings)",
                          where="$.signature", code="verify.signature")
    else:
        text = DEFAULT_TEXT.format(signature=signature, code=code, minutes=max(1, conf["ttl_seconds"] // 60))
        send = {"text": text, "signature": signature}
    salt = secrets.token_hex(16)
    at = _now()
    made: list[int] = []

    def created(conn: Connection, message_id: int) -> None:
        signature, batch_id = _message_of(conn, message_id)
        batches.seal_secret(conn, ctx, batch_id, code)  # leaves the batch's text when the gateway takes it
        vid = conn.execute(insert(verifications).values(
            tenant_id=tenant_id, phone_hash=ctx.vault.hash(phone.e164), phone_enc=ctx.vault.encrypt(phone.e164),
            signature=signature,
            prefix=prefix_of(phone), message_id=message_id, salt=salt, code_hash=_code_hash(ctx, salt, code),
            attempts=0, max_attempts=conf["max_attempts"], status="pending", created_at=at,
            expires_at=at + timedelta(seconds=conf["ttl_seconds"]),
        ).returning(verifications.c.id)).scalar_one()
        if bind is not None:
            bind(conn, f"verification:{vid}")
        made.append(vid)

    try:
        message = send_message(ctx, tenant_id, to=phone.e164, kind="verification", origin="verify", actor=actor,
                               guarded=guarded, on_created=created, **send)
    except SmsguardError:
        if made:  # made, then refused (budget): the batch was cancelled; the code leaves its text
            with ctx.db.begin() as conn:
                row = conn.execute(update(verifications).where(verifications.c.id == made[0])
                                   .values(status="failed", recorded_at=_now())
                                   .returning(verifications.c.message_id)).one()
            batches.redact_text(ctx, message_batch(ctx, tenant_id, row.message_id), code, REDACTED * len(code))
        raise
    return _sent(ctx, tenant_id, made[0], message, phone, actor, code)


def _message_of(conn: Connection, message_id: int) -> tuple[str, int]:
    from ._tables import messages

    row = conn.execute(select(messages.c.signature, messages.c.batch_id).where(messages.c.id == message_id)).one()
    return row.signature, row.batch_id


def resume_verification(ctx: batches.Context, tenant_id: int, verification_id: int, *, to: str,
                        actor: str) -> dict[str, Any]:
    """Finish a ``start_verification`` that crashed after its rows were made (the code only in the message's
    text and as its hash): the message is submitted if it was not, and the send recorded as it would have been."""
    with ctx.db.connect() as conn:
        row = conn.execute(select(verifications).where(verifications.c.id == verification_id,
                                                       verifications.c.tenant_id == tenant_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"no verification {verification_id}", where="header Idempotency-Key",
                            code="verify.not_found")
    message = resume_message(ctx, tenant_id, row.message_id, to=to, actor=actor)
    return _sent(ctx, tenant_id, verification_id, message, phone_of(to), actor, None)


def _sent(ctx: batches.Context, tenant_id: int, vid: int, message: dict[str, Any], phone: Phone, actor: str,
          code: str | None) -> dict[str, Any]:
    """The message was handed to the pipeline: count the code sent (or mark it failed), audit, redact if failed."""
    failed = message["state"] in ("rejected", "cancelled", "invalid", "opted_out")
    event = None
    with ctx.db.begin() as conn:
        first = conn.execute(update(verifications)
                             .where(verifications.c.id == vid, verifications.c.recorded_at.is_(None))
                             .values(recorded_at=_now(), **({"status": "failed"} if failed else {}))).rowcount
        if not first:  # a resumed send whose first request had recorded it before crashing
            return get_verification(ctx, tenant_id, vid) | {"message": {"id": message["id"], "state": message["state"]}}
        event = None if failed else record_code_sent(conn, tenant_id, phone, message["signature"])
        audit.append(conn, event_type="verify.failed" if failed else "verify.sent", actor=actor, tenant_id=tenant_id,
                     subject=f"verification:{vid}",
                     payload={"verification_id": vid, "message_id": message["id"], "phone": phone.masked,
                              "signature": message["signature"], "message_state": message["state"]})
    if failed and code is not None:
        batches.redact_text(ctx, message["batch_id"], code, REDACTED * len(code))  # never sent: not kept
    elif failed:
        with ctx.db.connect() as conn:
            _redact(ctx, tenant_id, conn.execute(select(verifications).where(verifications.c.id == vid)).one())
    if event is not None:
        notify(event)
    return get_verification(ctx, tenant_id, vid) | {"message": {"id": message["id"], "state": message["state"]}}


def get_verification(ctx: batches.Context, tenant_id: int, verification_id: int) -> dict[str, Any]:
    with ctx.db.connect() as conn:
        row = conn.execute(select(verifications).where(verifications.c.id == verification_id,
                                                       verifications.c.tenant_id == tenant_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"no verification {verification_id}", where="path verification_id",
                            code="verify.not_found")
    return _out(row)


def _out(row: Any) -> dict[str, Any]:
    return {"id": row.id, "status": row.status, "signature": row.signature, "message_id": row.message_id,
            "attempts": row.attempts, "attempts_left": max(0, row.max_attempts - row.attempts),
            "created_at": _iso(row.created_at), "expires_at": _iso(row.expires_at),
            "verified_at": _iso(row.verified_at)}


def check_verification(
    ctx: batches.Context,
    tenant_id: int,
    *,
    code: str,
    to: str | None = None,
    verification_id: int | None = None,
    actor: str,
) -> dict[str, Any]:
    """Check ``code`` against the verification ``verification_id``, or the newest one sent to ``to``."""
    if to is None and verification_id is None:
        raise VerifyError("give to or verification_id", where="$", code="verify.target")
    phone = phone_of(to) if to is not None else None
    q = select(verifications).where(verifications.c.tenant_id == tenant_id)
    if verification_id is not None:
        q = q.where(verifications.c.id == verification_id)
    if phone is not None:
        q = q.where(verifications.c.phone_hash == ctx.vault.hash(phone.e164))
    at = _now()
    event = None
    ok = last = False
    with ctx.db.begin() as conn:
        row = conn.execute(q.order_by(verifications.c.id.desc()).limit(1)).one_or_none()
        if row is None:
            raise NotFoundError("no verification for this number" if verification_id is None
                                else f"no verification {verification_id}",
                                where="$.verification_id" if verification_id is not None else "$.to",
                                code="verify.not_found")
        subject = f"verification:{row.id}"
        if row.status == "verified":
            raise VerifyUsed("this code was already used", where="$.code")
        if row.status == "failed":
            raise TooManyAttempts("too many wrong codes: send a new one", where="$.code")
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        if row.status == "expired" or at >= expires:
            if row.status == "pending":
                conn.execute(update(verifications).where(verifications.c.id == row.id).values(status="expired"))
                audit.append(conn, event_type="verify.expired", actor=actor, tenant_id=tenant_id, subject=subject,
                             payload={"verification_id": row.id})
            expired = True
        else:
            expired = False
            attempts = conn.execute(update(verifications).where(
                verifications.c.id == row.id, verifications.c.status == "pending",
                verifications.c.attempts < verifications.c.max_attempts,
            ).values(attempts=verifications.c.attempts + 1).returning(verifications.c.attempts)).scalar()
            if attempts is None:  # the count after this request's UPDATE: concurrent checks each see their own
                raise TooManyAttempts("too many wrong codes: send a new one", where="$.code")
            ok = hmac.compare_digest(row.code_hash, _code_hash(ctx, row.salt, code))
            if ok:
                used = conn.execute(update(verifications).where(verifications.c.id == row.id,
                                                                verifications.c.status == "pending")
                                    .values(status="verified", verified_at=at)).rowcount
                if not used:  # a concurrent check with the right code won: single use
                    raise VerifyUsed("this code was already used", where="$.code")
                audit.append(conn, event_type="verify.verified", actor=actor, tenant_id=tenant_id, subject=subject,
                             payload={"verification_id": row.id, "attempts": attempts})
                _bump(conn, tenant_id, row.signature, row.prefix, sent=0, verified=1)
                event = VerificationEvent("verified", tenant_id, phone or parse_phone(ctx.vault.decrypt(row.phone_enc)),
                                          row.signature, row.prefix)
            else:
                last = attempts >= row.max_attempts
                if last:
                    conn.execute(update(verifications).where(verifications.c.id == row.id).values(status="failed"))
                audit.append(conn, event_type="verify.failed" if last else "verify.mismatch", actor=actor,
                             tenant_id=tenant_id, subject=subject,
                             payload={"verification_id": row.id, "attempts": attempts})
    if expired:
        _redact(ctx, tenant_id, row)
        raise VerifyExpired("the code has expired: send a new one", where="$.code")
    if not ok:
        if last:
            _redact(ctx, tenant_id, row)
            raise TooManyAttempts(f"wrong code, and that was the last of {row.max_attempts} attempts: send a new one",
                                  where="$.code")
        raise VerifyMismatch(f"wrong code ({row.max_attempts - attempts} attempt(s) left)", where="$.code")
    _redact(ctx, tenant_id, row, code)
    if event is not None:
        notify(event)
    return get_verification(ctx, tenant_id, row.id) | {"verified": True}


def _redact(ctx: batches.Context, tenant_id: int, row: Any, code: str | None = None) -> None:
    """The code is over: its characters leave the stored message text. When the caller does not know the code
    (expired, used up), the runs of the text that hash to it are found (the text is short: a few hundred HMACs)."""
    if row.message_id is None:
        return
    from ._messages import message_text

    bid, text = message_text(ctx, tenant_id, row.message_id)
    if code is None:
        allowed = set(string.ascii_letters + DIGITS)
        code = next((text[i:i + n] for n in range(4, 9) for i in range(len(text) - n + 1)
                     if set(text[i:i + n]) <= allowed
                     and hmac.compare_digest(row.code_hash, _code_hash(ctx, row.salt, text[i:i + n]))), None)
    if code:
        batches.redact_text(ctx, bid, code, REDACTED * len(code))


def conversion(
    ctx: batches.Context,
    tenant_id: int,
    *,
    signature: str | None = None,
    prefix: str | None = None,
    since: str | None = None,
    until: str | None = None,
    by: tuple[str, ...] = ("signature", "prefix"),
    limit: int = 1000,
) -> dict[str, Any]:
    """Codes sent and verified per ``by`` (signature and/or prefix) between the UTC days ``since`` and ``until``
    (YYYY-MM-DD, inclusive), with the totals."""
    c = verify_conversion.c
    groups = [getattr(c, g) for g in by]
    q = select(*groups, func.sum(c.sent).label("sent"), func.sum(c.verified).label("verified")).where(
        c.tenant_id == tenant_id)
    if signature is not None:
        q = q.where(c.signature == signature)
    if prefix is not None:
        q = q.where(c.prefix == prefix)
    if since is not None:
        q = q.where(c.day >= since)
    if until is not None:
        q = q.where(c.day <= until)
    with ctx.db.connect() as conn:
        rows = conn.execute(q.group_by(*groups).order_by(func.sum(c.sent).desc(), *groups).limit(limit)).all()
        total = conn.execute(q.with_only_columns(func.coalesce(func.sum(c.sent), 0),
                                                 func.coalesce(func.sum(c.verified), 0))).one()

    def rate(sent: int, verified: int) -> float | None:
        return round(verified / sent, 4) if sent else None

    return {
        "sent": int(total[0]), "verified": int(total[1]), "conversion": rate(int(total[0]), int(total[1])),
        "rows": [{**{g: getattr(r, g) for g in by}, "sent": int(r.sent), "verified": int(r.verified),
                  "conversion": rate(int(r.sent), int(r.verified))} for r in rows],
    }
