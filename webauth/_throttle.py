"""Login throttling: failed log-ins counted per account and per client address, in SQL.

After ``free_failures`` failures in a row a key must wait before its next try (1 s, then doubling up to
``max_delay``); a try inside the wait is refused at once, without checking the password, so a flood costs no
password hashing. After ``lock_after`` failures the key is locked until an administrator unlocks it
(``smsguard user unlock`` / ``smsguard console user unlock``); each lock is one ``login.locked`` audit event.
A successful log-in clears its account's count, not its address's (an attacker logging in to an account of
their own must not reset the address they guess from). A count without a failure for ``forget_after`` seconds
starts over; a lock does not expire.

SQL rather than Redis: a lock must survive a Redis flush, and it is checked by every process alike. Unknown user
names are counted like real ones, so the answers never tell which names exist. Keys are
``<realm>:account:<name>`` and ``<realm>:address:<ip>``, the realm being the UI (``review``, ``console``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Engine, Float, Integer, String, Table, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from smsguard import audit
from smsguard.storage._models import Base

login_throttle = Table(
    "login_throttle",
    Base.metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure", Float, nullable=False),  # Unix time: compared with arithmetic, on both backends alike
    Column("locked_at", Float, nullable=True),
)


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    """How one kind of key (accounts, or addresses) is slowed down and locked."""

    free_failures: int
    lock_after: int
    first_delay: float = 1.0
    max_delay: float = 300.0
    forget_after: float = 3600.0

    def delay(self, failures: int) -> float:
        """Seconds a key with this many failures in a row waits before its next try."""
        if failures < self.free_failures:
            return 0.0
        return min(self.max_delay, self.first_delay * 2.0 ** (failures - self.free_failures))


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Accounts lock sooner than addresses: many people may share one address (an office behind NAT)."""

    account: ThrottleRule = ThrottleRule(free_failures=3, lock_after=10)
    address: ThrottleRule = ThrottleRule(free_failures=5, lock_after=30)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a try is refused before its password is checked: ``locked`` or ``wait`` (``retry_after`` seconds)."""

    reason: str
    retry_after: int


@dataclass(frozen=True, slots=True)
class Lock:
    key: str
    failures: int
    locked_at: float


class LoginThrottle:
    """The throttle of one UI (``realm``); every method is synchronous SQL (run it in a thread)."""

    def __init__(self, realm: str, policy: ThrottlePolicy | None = None) -> None:
        self.realm = realm
        self.policy = policy or ThrottlePolicy()

    def keys(self, username: str, address: str) -> dict[str, ThrottleRule]:
        p = self.policy
        return {account_key(self.realm, username): p.account, address_key(self.realm, address): p.address}

    def check(self, db: Engine, username: str, address: str, *, now: float | None = None) -> Refusal | None:
        """None when this try may go ahead (its password is then checked), else why not."""
        return self.admit(db, username, address, now=now)[0]

    def admit(self, db: Engine, username: str, address: str, *,
              now: float | None = None) -> tuple[Refusal | None, tuple[str, ...]]:
        """``check``, and the keys past their free failures: the caller lets one try at a time through on those,
        or every flood loop waiting for the same moment would get a password check."""
        now = time.time() if now is None else now
        rules = self.keys(username, address)
        with db.connect() as conn:
            rows = conn.execute(select(login_throttle).where(login_throttle.c.key.in_(rules))).all()
        wait, hot = 0.0, []
        for row in rows:
            if row.locked_at is not None:
                return Refusal("locked", 0), ()
            rule = rules[row.key]
            if now - row.last_failure < rule.forget_after:
                wait = max(wait, row.last_failure + rule.delay(row.failures) - now)
                if row.failures >= rule.free_failures:
                    hot.append(row.key)
        return (Refusal("wait", max(1, int(wait + 0.999))) if wait > 0 else None), tuple(hot)

    def failed(self, db: Engine, username: str, address: str, *, actor: str, via: str,
               now: float | None = None) -> list[Lock]:
        """Count a failed try on its account and its address; the locks this failure set (each audited once)."""
        now = time.time() if now is None else now
        locks: list[Lock] = []
        with db.begin() as conn:
            for key, rule in self.keys(username, address).items():
                failures = _count(conn, key, now, rule.forget_after)
                if failures >= rule.lock_after and _lock(conn, key, now):
                    locks.append(Lock(key, failures, now))
                    kind, _, name = key.partition(":")[2].partition(":")
                    audit.append(conn, event_type="login.locked", actor=actor, tenant_id=None, subject=key,
                                 payload={"via": via, "kind": kind, kind: name, "failures": failures})
        return locks

    def succeeded(self, db: Engine, username: str) -> None:
        with db.begin() as conn:
            conn.execute(delete(login_throttle).where(login_throttle.c.key == account_key(self.realm, username),
                                                      login_throttle.c.locked_at.is_(None)))


def account_key(realm: str, username: str) -> str:
    return f"{realm}:account:{username[:150]}"


def address_key(realm: str, address: str) -> str:
    return f"{realm}:address:{address[:150]}"


def _count(conn: Connection, key: str, now: float, forget_after: float) -> int:
    """One more failure on ``key`` (a count older than ``forget_after`` starts over), atomically: two processes
    counting at once both count."""
    t = login_throttle
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(t).values(key=key, failures=1, last_failure=now)
    stale = (t.c.last_failure < now - forget_after) & t.c.locked_at.is_(None)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.key],
        set_={"failures": case((stale, 1), else_=t.c.failures + 1), "last_failure": now},
    ).returning(t.c.failures)
    return conn.execute(stmt).scalar_one()


def _lock(conn: Connection, key: str, now: float) -> bool:
    """Lock ``key``; False when it was locked already (by this failure's twin on another process)."""
    t = login_throttle
    return bool(conn.execute(update(t).where(t.c.key == key, t.c.locked_at.is_(None)).values(locked_at=now)).rowcount)


# -- what an administrator does (the CLI) ----------------------------------------------------------------


def locks(db: Engine, realm: str) -> list[Lock]:
    """The realm's locked keys, oldest lock first."""
    t = login_throttle
    with db.connect() as conn:
        rows = conn.execute(select(t).where(t.c.key.startswith(f"{realm}:"), t.c.locked_at.is_not(None))
                            .order_by(t.c.locked_at)).all()
    return [Lock(r.key, r.failures, r.locked_at) for r in rows]


def unlock(db: Engine, key: str, *, actor: str) -> bool:
    """Lift the lock (and the count) of ``key``, with a ``login.unlocked`` audit event; False if it was not locked."""
    t = login_throttle
    with db.begin() as conn:
        row: Any = conn.execute(select(t).where(t.c.key == key, t.c.locked_at.is_not(None))).one_or_none()
        if row is None:
            return False
        conn.execute(delete(t).where(t.c.key == key))
        audit.append(conn, event_type="login.unlocked", actor=actor, tenant_id=None, subject=key,
                     payload={"failures": row.failures})
    return True
