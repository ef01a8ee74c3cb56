"""The prepaid ledger: top-ups, holds, charges, releases, refunds and adjustments, each one entry.

Every change runs in the caller's transaction and starts by locking the tenant's account row
(:func:`lock`): ``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite a write to the row first, which takes the
database's write lock for the rest of the transaction (what ``BEGIN IMMEDIATE`` would do), so the balance
read after it is the latest. Two processes can therefore never both pass the "is enough available?" check
of :func:`hold`: the second one waits for the first one's commit and then sees its hold.

A tenant without an account row is not prepaid: :func:`hold` and :func:`charge` do nothing for it (the budget
of ``smsguard.batches`` still applies). The first top-up opens the account.

Each entry is also an audit event ``billing.<kind>`` on ``billing:<tenant id>`` in the same transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from smsguard import audit, webhooks
from smsguard.core import ConflictError, InputError, NotFoundError, QuotaError

from ._money import money
from ._tables import CHARGE_ON, ENTRY_KINDS, accounts, entries, holds

log = logging.getLogger("smsguard.billing")

TENANT = ("available", "held")
"""The tenant's own accounts; ``funding`` and ``revenue`` are the platform's."""


class InsufficientBalance(QuotaError):
    """A hold larger than what is available: nothing was held (HTTP 402)."""

    code = "billing.insufficient_balance"

    def __init__(self, message: str, *, needed: int, available: int, where: str = "balance") -> None:
        super().__init__(message, where=where, code=self.code)
        self.needed, self.available = needed, available


def now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


# -- the account row: the lock every change takes first ----------------------------------------------------


def lock(conn: Connection, tenant_id: int) -> Any:
    """The tenant's account row, locked until ``conn`` commits; None when the tenant is not prepaid.

    The audit chain's lock is taken first: every ledger change appends an audit event (which takes it), and
    some callers have appended one before (a batch cancelled, a review decision), so chain → account is the
    one order every transaction takes them in, and two of them never wait for each other (no deadlock)."""
    audit.lock_head(conn)
    q = select(accounts).where(accounts.c.tenant_id == tenant_id)
    if conn.dialect.name == "postgresql":
        return conn.execute(q.with_for_update()).one_or_none()
    # SQLite: a write first (even one matching no row) takes the write lock, so no other writer runs between
    # this read and our commit
    conn.execute(update(accounts).where(accounts.c.tenant_id == tenant_id)
                 .values(updated_at=accounts.c.updated_at))
    return conn.execute(q).one_or_none()


def open_account(conn: Connection, tenant_id: int, *, actor: str, charge_on: str = "handover") -> Any:
    """The tenant's locked account row, created (balance 0) when it has none: the tenant is prepaid from now."""
    row = lock(conn, tenant_id)
    if row is not None:
        return row
    t = now()
    try:
        with conn.begin_nested():
            conn.execute(insert(accounts).values(
                tenant_id=tenant_id, balance_micros=0, held_micros=0, low_balance_micros=None, low_alerted=False,
                charge_on=charge_on, created_at=t, updated_at=t,
            ))
    except IntegrityError:  # a concurrent first top-up (PostgreSQL): it made the row; take its lock
        return lock(conn, tenant_id)
    audit.append(conn, event_type="billing.account_opened", actor=actor, tenant_id=tenant_id,
                 subject=f"billing:{tenant_id}", payload={"tenant_id": tenant_id, "charge_on": charge_on})
    return lock(conn, tenant_id)


def _post(
    conn: Connection,
    acct: Any,
    kind: str,
    debit: str,
    credit: str,
    amount: int,
    *,
    actor: str,
    hold: Any = None,
    quantity: int | None = None,
    reference: str | None = None,
    memo: str | None = None,
) -> Any:
    """Write one entry moving ``amount`` from ``debit`` to ``credit``, update the cached sums, audit it; returns
    the account row as it is now. ``acct`` must be the row :func:`lock` returned in this transaction."""
    assert amount > 0 and debit != credit
    d_balance = (amount if credit in TENANT else 0) - (amount if debit in TENANT else 0)
    d_held = (amount if credit == "held" else 0) - (amount if debit == "held" else 0)
    balance, held = acct.balance_micros + d_balance, acct.held_micros + d_held
    if balance - held < 0 or held < 0:  # the check the lock makes safe; a bug if ever reached
        raise InsufficientBalance(
            f"this {kind} of {money(amount)} would leave {money(balance - held)} available", needed=amount,
            available=acct.balance_micros - acct.held_micros)
    t = now()
    low, alerted = acct.low_balance_micros, acct.low_alerted
    crossed = low is not None and balance - held < low and not alerted
    rearmed = alerted and (low is None or balance - held >= low)
    conn.execute(update(accounts).where(accounts.c.tenant_id == acct.tenant_id).values(
        balance_micros=balance, held_micros=held, updated_at=t,
        low_alerted=(alerted or crossed) and not rearmed))
    entry_id = conn.execute(insert(entries).values(
        tenant_id=acct.tenant_id, kind=kind, debit=debit, credit=credit, amount_micros=amount,
        balance_after=balance, held_after=held, hold_id=hold.id if hold is not None else None, quantity=quantity,
        reference=reference, memo=memo, actor=actor[:100], created_at=t,
    ).returning(entries.c.id)).scalar_one()
    payload = {"entry_id": entry_id, "kind": kind, "debit": debit, "credit": credit, "amount": money(amount),
               "balance": money(balance), "held": money(held), "available": money(balance - held)}
    if hold is not None:
        payload["hold"] = hold.ref
    if quantity is not None:
        payload["quantity"] = quantity
    if reference:
        payload["reference"] = reference
    audit.append(conn, event_type=f"billing.{kind}", actor=actor, tenant_id=acct.tenant_id,
                 subject=f"billing:{acct.tenant_id}", payload=payload)
    if crossed:
        _low_balance(conn, acct.tenant_id, balance, held, low, actor)
    return conn.execute(select(accounts).where(accounts.c.tenant_id == acct.tenant_id)).one()


def _low_balance(conn: Connection, tenant_id: int, balance: int, held: int, low: int, actor: str) -> None:
    """Available fell below the tenant's threshold: told once (an audit event and the ``budget.low`` webhook)
    until a top-up lifts it above again."""
    payload = {"balance": money(balance), "held": money(held), "available": money(balance - held),
               "threshold": money(low)}
    audit.append(conn, event_type="billing.low_balance", actor=actor, tenant_id=tenant_id,
                 subject=f"billing:{tenant_id}", payload=payload)
    webhooks.emit(conn, tenant_id=tenant_id, event_type="budget.low", subject=f"billing:{tenant_id}",
                  payload={"source": "balance", **payload})


# -- top-ups and adjustments (the operator's) --------------------------------------------------------------


def top_up(
    db: Engine, tenant_id: int, amount: int, *, actor: str, reference: str | None = None, memo: str | None = None
) -> dict[str, Any]:
    """Credit ``amount`` micros (> 0) to the tenant's balance, opening its account on the first one. A
    ``reference`` (the payment's id) makes it idempotent: the same reference again changes nothing and
    answers the first top-up (a different amount with it is a ConflictError)."""
    if amount <= 0:
        raise InputError("a top-up must be more than 0", where="$.amount", code="billing.amount")
    reference = (reference or "").strip()[:100] or None
    with db.begin() as conn:
        acct = open_account(conn, tenant_id, actor=actor)
        if reference is not None:
            prior = conn.execute(select(entries).where(entries.c.tenant_id == tenant_id,
                                                       entries.c.reference == reference)).one_or_none()
            if prior is not None:
                if prior.amount_micros != amount or prior.kind != "topup":
                    raise ConflictError(f"reference {reference!r} was used for a top-up of "
                                        f"{money(prior.amount_micros)}", where="$.reference",
                                        code="billing.reference")
                return {"entry": _entry(prior), "replayed": True, **_sums(acct)}
        _post(conn, acct, "topup", "funding", "available", amount, actor=actor, reference=reference, memo=memo)
        entry = conn.execute(select(entries).where(entries.c.tenant_id == tenant_id)
                             .order_by(entries.c.id.desc()).limit(1)).one()
        return {"entry": _entry(entry), "replayed": False, **_sums(lock(conn, tenant_id))}


def adjust(db: Engine, tenant_id: int, amount: int, *, actor: str, memo: str) -> dict[str, Any]:
    """A correction by the operator: ``amount`` micros in (> 0) or out (< 0) of the available balance; never
    below what is available (holds are left alone)."""
    if amount == 0:
        raise InputError("an adjustment must not be 0", where="amount", code="billing.amount")
    if not memo.strip():
        raise InputError("an adjustment needs a memo saying why", where="memo", code="billing.memo")
    with db.begin() as conn:
        acct = lock(conn, tenant_id)
        if acct is None:
            raise NotFoundError(f"tenant {tenant_id} has no prepaid account (top it up first)", where="tenant",
                                code="billing.no_account")
        available = acct.balance_micros - acct.held_micros
        if amount < 0 and -amount > available:
            raise InsufficientBalance(
                f"cannot take {money(-amount)}: only {money(available)} is available", needed=-amount,
                available=available, where="amount")
        debit, credit = ("funding", "available") if amount > 0 else ("available", "funding")
        acct = _post(conn, acct, "adjustment", debit, credit, abs(amount), actor=actor, memo=memo.strip()[:2000])
        return _sums(acct)


# -- holds and what settles them (the batches feature's) ----------------------------------------------------


def get_hold(conn: Connection, tenant_id: int, ref: str) -> Any:
    return conn.execute(select(holds).where(holds.c.tenant_id == tenant_id, holds.c.ref == ref)).one_or_none()


def remaining(h: Any) -> int:
    """What a hold still sets aside (0 once settled)."""
    return 0 if h.state != "open" else h.amount_micros - h.charged_micros - h.released_micros


def hold(
    conn: Connection, tenant_id: int, ref: str, amount: int, *, prices: Mapping[str, int], actor: str,
    memo: str | None = None,
) -> int | None:
    """Set ``amount`` micros aside for ``ref`` (``batch:<id>``) at ``prices`` (micros per segment by carrier,
    kept for the charges). Returns the hold's id; None when the tenant is not prepaid. Idempotent by ``ref``.
    More than is available: :class:`InsufficientBalance`, and nothing is written."""
    acct = lock(conn, tenant_id)
    if acct is None:
        return None
    existing = get_hold(conn, tenant_id, ref)
    if existing is not None:
        return existing.id
    available = acct.balance_micros - acct.held_micros
    if amount > available:
        raise InsufficientBalance(
            f"{ref.replace(':', ' ')} would cost {money(amount)}, more than the available balance "
            f"{money(available)} (balance {money(acct.balance_micros)}, held {money(acct.held_micros)}): top up "
            f"at least {money(amount - available)}, or shrink the batch, then submit it again",
            needed=amount, available=available)
    t = now()
    hold_id = conn.execute(insert(holds).values(
        tenant_id=tenant_id, ref=ref, amount_micros=amount, charged_micros=0, refunded_micros=0,
        released_micros=0, charge_on=acct.charge_on, prices=json.dumps(dict(prices), sort_keys=True),
        state="open", created_at=t, settled_at=None if amount else t,
    ).returning(holds.c.id)).scalar_one()
    if amount:
        _post(conn, acct, "hold", "available", "held", amount, actor=actor, hold=get_hold(conn, tenant_id, ref),
              memo=memo)
    else:  # nothing to set aside: settled at once, audited all the same
        conn.execute(update(holds).where(holds.c.id == hold_id).values(state="settled"))
        audit.append(conn, event_type="billing.hold", actor=actor, tenant_id=tenant_id,
                     subject=f"billing:{tenant_id}", payload={"hold": ref, "amount": money(0)})
    return hold_id


def hold_prices(h: Any) -> dict[str, int]:
    return {k: int(v) for k, v in json.loads(h.prices).items()}


def charge(
    conn: Connection, tenant_id: int, ref: str, amount: int, *, quantity: int, actor: str, memo: str | None = None
) -> int:
    """Charge ``amount`` micros for ``quantity`` messages of ``ref``, out of its hold. Returns what was charged.

    Never more than the hold sets aside (prices are those at the hold); a hold already settled (or none)
    charges what is available, and what is not is logged as uncollected: a message handed over cannot be
    taken back, and the balance never goes below zero."""
    if amount <= 0:
        return 0
    acct = lock(conn, tenant_id)
    if acct is None:
        return 0
    h = get_hold(conn, tenant_id, ref)
    from_hold = min(amount, remaining(h)) if h is not None else 0
    if from_hold:
        acct = _post(conn, acct, "charge", "held", "revenue", from_hold, actor=actor, hold=h, quantity=quantity,
                     memo=memo)
        conn.execute(update(holds).where(holds.c.id == h.id)
                     .values(charged_micros=holds.c.charged_micros + from_hold))
    rest = amount - from_hold
    extra = min(rest, acct.balance_micros - acct.held_micros)
    if extra > 0:
        _post(conn, acct, "charge", "available", "revenue", extra, actor=actor, hold=h,
              quantity=quantity if not from_hold else None, memo=memo or "beyond the hold")
        if h is not None:
            conn.execute(update(holds).where(holds.c.id == h.id)
                         .values(charged_micros=holds.c.charged_micros + extra))
    if rest - max(extra, 0) > 0:
        log.warning("tenant %s, %s: %s could not be charged (the balance is used up)", tenant_id, ref,
                    money(rest - max(extra, 0)))
    return from_hold + max(extra, 0)


def refund(
    conn: Connection, tenant_id: int, ref: str, amount: int, *, quantity: int, actor: str, memo: str | None = None
) -> int:
    """Give back up to ``amount`` micros charged for ``ref`` (messages that failed before the carrier)."""
    if amount <= 0:
        return 0
    acct = lock(conn, tenant_id)
    h = get_hold(conn, tenant_id, ref) if acct is not None else None
    if h is None:
        return 0
    back = min(amount, h.charged_micros - h.refunded_micros)
    if back <= 0:
        return 0
    _post(conn, acct, "refund", "revenue", "available", back, actor=actor, hold=h, quantity=quantity, memo=memo)
    conn.execute(update(holds).where(holds.c.id == h.id).values(refunded_micros=holds.c.refunded_micros + back))
    return back


def settle(conn: Connection, tenant_id: int, ref: str, *, actor: str, memo: str | None = None) -> int | None:
    """Close ``ref``'s hold: what it still sets aside goes back to available. Returns that amount; None when
    there is no open hold (not prepaid, settled before)."""
    acct = lock(conn, tenant_id)
    h = get_hold(conn, tenant_id, ref) if acct is not None else None
    if h is None or h.state != "open":
        return None
    left = remaining(h)
    if left:
        _post(conn, acct, "release", "held", "available", left, actor=actor, hold=h, memo=memo)
    conn.execute(update(holds).where(holds.c.id == h.id).values(
        state="settled", settled_at=now(), released_micros=holds.c.released_micros + left))
    if not left:
        audit.append(conn, event_type="billing.settled", actor=actor, tenant_id=tenant_id,
                     subject=f"billing:{tenant_id}", payload={"hold": ref, "released": money(0)})
    return left


def open_holds(conn: Connection) -> list[Any]:
    return conn.execute(select(holds).where(holds.c.state == "open").order_by(holds.c.id)).all()


# -- settings ------------------------------------------------------------------------------------------------


def set_settings(
    db: Engine, tenant_id: int, *, actor: str, low_balance: int | None = ..., charge_on: str | None = None  # type: ignore[assignment]
) -> dict[str, Any]:
    """The low-balance threshold (micros; None removes it) and when messages are charged: ``handover`` (to
    the carrier's gateway) or ``delivery`` (on a delivered receipt only). Given fields only; opens the account."""
    if charge_on is not None and charge_on not in CHARGE_ON:
        raise InputError(f"charge_on must be one of {', '.join(CHARGE_ON)}", where="$.charge_on",
                         code="billing.charge_on")
    if low_balance is not ... and low_balance is not None and low_balance < 0:
        raise InputError("low_balance must not be negative", where="$.low_balance", code="billing.amount")
    with db.begin() as conn:
        acct = open_account(conn, tenant_id, actor=actor)
        values: dict[str, Any] = {"updated_at": now()}
        if charge_on is not None:
            values["charge_on"] = charge_on
        if low_balance is not ...:
            values["low_balance_micros"] = low_balance
            values["low_alerted"] = False  # judged again at the next change
        conn.execute(update(accounts).where(accounts.c.tenant_id == tenant_id).values(**values))
        audit.append(conn, event_type="billing.settings", actor=actor, tenant_id=tenant_id,
                     subject=f"billing:{tenant_id}", payload={
                         "charge_on": values.get("charge_on", acct.charge_on),
                         "low_balance": money(values["low_balance_micros"])
                         if values.get("low_balance_micros") is not None else None})
        return _sums(lock(conn, tenant_id))


# -- reading -------------------------------------------------------------------------------------------------


def _sums(acct: Any) -> dict[str, Any]:
    if acct is None:
        return {"prepaid": False, "balance": None, "held": None, "available": None, "low_balance": None,
                "charge_on": None}
    return {
        "prepaid": True,
        "balance": money(acct.balance_micros),
        "held": money(acct.held_micros),
        "available": money(acct.balance_micros - acct.held_micros),
        "low_balance": money(acct.low_balance_micros) if acct.low_balance_micros is not None else None,
        "charge_on": acct.charge_on,
    }


def get_balance(db: Engine, tenant_id: int, *, currency: str = "CNY") -> dict[str, Any]:
    """Balance (sum of the entries), held (open holds) and available (balance − held)."""
    with db.connect() as conn:
        acct = conn.execute(select(accounts).where(accounts.c.tenant_id == tenant_id)).one_or_none()
        n = conn.execute(select(func.count()).select_from(holds)
                         .where(holds.c.tenant_id == tenant_id, holds.c.state == "open")).scalar_one()
    return {**_sums(acct), "open_holds": n, "currency": currency}


def _entry(e: Any, ref: str | None = None) -> dict[str, Any]:
    effect = (e.amount_micros if e.credit in TENANT else 0) - (e.amount_micros if e.debit in TENANT else 0)
    return {
        "id": e.id,
        "kind": e.kind,
        "amount": money(e.amount_micros),
        "balance_change": ("+" if effect > 0 else "") + money(effect),
        "debit": e.debit,
        "credit": e.credit,
        "balance_after": money(e.balance_after),
        "held_after": money(e.held_after),
        "available_after": money(e.balance_after - e.held_after),
        "hold": ref,
        "quantity": e.quantity,
        "reference": e.reference,
        "memo": e.memo,
        "actor": e.actor,
        "created_at": _aware(e.created_at).isoformat(),
    }


def statement(
    db: Engine, tenant_id: int, *, since: datetime | None = None, until: datetime | None = None, after: int = 0,
    limit: int = 100, currency: str = "CNY", kinds: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The tenant's entries, oldest first, from ``since`` (inclusive) to ``until`` (exclusive), of ``kinds``
    only when given (see ``ENTRY_KINDS``); ``after`` is the last id of the previous page (``next_after``, None
    on the last page)."""
    limit = min(max(limit, 1), 1000)
    cond = [entries.c.tenant_id == tenant_id, entries.c.id > after]
    if kinds is not None:
        unknown = sorted(set(kinds) - set(ENTRY_KINDS))
        if unknown:
            raise InputError(f"entry type must be one of {', '.join(ENTRY_KINDS)}, got {unknown[0]!r}",
                             where="kind", code="billing.kind")
        cond.append(entries.c.kind.in_(tuple(kinds)))
    if since is not None:
        cond.append(entries.c.created_at >= since.astimezone(UTC))
    if until is not None:
        cond.append(entries.c.created_at < until.astimezone(UTC))
    q = (select(entries, holds.c.ref).select_from(entries.outerjoin(holds, holds.c.id == entries.c.hold_id))
         .where(and_(*cond)).order_by(entries.c.id).limit(limit + 1))
    with db.connect() as conn:
        rows = conn.execute(q).all()
    page = rows[:limit]
    return {
        "currency": currency,
        "items": [_entry(r, r.ref) for r in page],
        "next_after": page[-1].id if len(rows) > limit else None,
    }


def verify(db: Engine, tenant_id: int) -> dict[str, Any]:
    """The ledger's invariants for one tenant, recomputed from the entries: the balance is their sum, held is
    the open holds' remainders, nothing is negative, and every hold's parts add up. ``ok`` when all hold."""
    with db.connect() as conn:
        acct = conn.execute(select(accounts).where(accounts.c.tenant_id == tenant_id)).one_or_none()
        rows = conn.execute(select(entries.c.debit, entries.c.credit, entries.c.amount_micros, entries.c.balance_after,
                                   entries.c.held_after).where(entries.c.tenant_id == tenant_id)
                            .order_by(entries.c.id)).all()
        hs = conn.execute(select(holds).where(holds.c.tenant_id == tenant_id)).all()
    accounts_sum = dict.fromkeys(("available", "held", "funding", "revenue"), 0)
    lowest = 0
    running_ok = True
    for r in rows:
        accounts_sum[r.debit] -= r.amount_micros
        accounts_sum[r.credit] += r.amount_micros
        lowest = min(lowest, accounts_sum["available"], accounts_sum["held"])
        running_ok &= (r.balance_after == accounts_sum["available"] + accounts_sum["held"]
                       and r.held_after == accounts_sum["held"])
    balance = accounts_sum["available"] + accounts_sum["held"]
    held_open = sum(remaining(h) for h in hs)
    holds_ok = all(h.charged_micros + h.released_micros <= h.amount_micros and h.refunded_micros <= h.charged_micros
                   for h in hs)
    checks = {
        "balance_is_sum_of_entries": acct is None or acct.balance_micros == balance,
        "held_is_open_holds": acct is None or acct.held_micros == held_open == accounts_sum["held"],
        "entries_balance": sum(accounts_sum.values()) == 0,  # every entry debits what it credits
        "never_negative": lowest >= 0,
        "running_totals": running_ok,
        "holds_add_up": holds_ok,
    }
    return {
        "ok": all(checks.values()),
        "checks": checks,
        "balance": money(balance),
        "held": money(accounts_sum["held"]),
        "available": money(accounts_sum["available"]),
        "topped_up": money(-accounts_sum["funding"]),
        "charged": money(accounts_sum["revenue"]),
        "entries": len(rows),
        "holds": len(hs),
        "open_holds": sum(1 for h in hs if h.state == "open"),
    }
