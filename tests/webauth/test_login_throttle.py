"""Login throttling (issue 15: 60 wrong console passwords in 26 s were all answered 401, no lock, and the right
password still worked): per account and per client address, an escalating wait, then a lock with one audit event,
lifted only by an administrator. On both backends; the clock is passed in where the rule is tested, real (tenths of
a second) where the HTTP answers are."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from sqlalchemy import select
from webauth_support import ACCOUNTS, PASSWORD, App

from smsguard.audit._tables import events
from smsguard.webauth._passwords import HashingBusy, HashingPool
from smsguard.webauth._throttle import (
    LoginThrottle,
    ThrottlePolicy,
    ThrottleRule,
    account_key,
    address_key,
    locks,
    login_throttle,
    unlock,
)
from smsguard.webauth.testing import form_token, log_in

# Waits long enough that a loaded machine still answers the next try inside them (a log-in takes ~1 s there).
RULES = ThrottlePolicy(account=ThrottleRule(free_failures=2, lock_after=4, first_delay=2.0, forget_after=60),
                       address=ThrottleRule(free_failures=5, lock_after=9, first_delay=2.0, forget_after=60))


def _events(db, event_type: str, subject: str) -> list:
    with db.connect() as conn:
        return conn.execute(select(events).where(events.c.event_type == event_type, events.c.subject == subject)
                            ).all()


# -- the rule, with the clock passed in -------------------------------------------------------------------


def test_the_wait_doubles_after_the_free_failures_then_the_account_locks_once(db) -> None:
    throttle = LoginThrottle("rule-a", ThrottlePolicy(account=ThrottleRule(3, 6, first_delay=1.0),
                                                      address=ThrottleRule(100, 200)))
    t = 1_000_000.0
    for _ in range(3):
        assert throttle.check(db, "eve", "10.0.0.1", now=t) is None
        assert throttle.failed(db, "eve", "10.0.0.1", actor="address:10.0.0.1", via="test", now=t) == []
    for wait in (1, 2, 4):  # 3 failures: wait 1 s; 4: 2 s; 5: 4 s
        refused = throttle.check(db, "eve", "10.0.0.1", now=t + wait - 0.1)
        assert refused is not None and (refused.reason, refused.retry_after) == ("wait", 1)
        t += wait
        assert throttle.check(db, "eve", "10.0.0.1", now=t) is None
        locked = throttle.failed(db, "eve", "10.0.0.1", actor="address:10.0.0.1", via="test", now=t)
    assert [(lock.key, lock.failures) for lock in locked] == [("rule-a:account:eve", 6)]
    # locked: no wait helps, a day later neither
    assert throttle.check(db, "eve", "10.0.0.9", now=t + 86_400).reason == "locked"
    [event] = _events(db, "login.locked", "rule-a:account:eve")
    assert json.loads(event.payload) == {"via": "test", "kind": "account", "account": "eve", "failures": 6}
    # a failure more on a locked account is counted but not audited again
    throttle.failed(db, "eve", "10.0.0.1", actor="address:10.0.0.1", via="test", now=t + 1)
    assert len(_events(db, "login.locked", "rule-a:account:eve")) == 1
    assert [lock.key for lock in locks(db, "rule-a")] == ["rule-a:account:eve"]
    assert unlock(db, "rule-a:account:eve", actor="cli:admin") is True
    assert unlock(db, "rule-a:account:eve", actor="cli:admin") is False
    assert throttle.check(db, "eve", "10.0.0.1", now=t + 2) is None
    assert len(_events(db, "login.unlocked", "rule-a:account:eve")) == 1


def test_an_address_is_counted_across_accounts_and_a_success_clears_only_the_account(db) -> None:
    throttle = LoginThrottle("rule-b", ThrottlePolicy(account=ThrottleRule(3, 10), address=ThrottleRule(4, 6)))
    t = 2_000_000.0
    for i in range(4):  # four names, one failure each: no account waits, the address does
        throttle.failed(db, f"guess{i}", "192.0.2.7", actor="x", via="test", now=t)
    assert throttle.check(db, "someone-else", "192.0.2.7", now=t).reason == "wait"
    assert throttle.check(db, "someone-else", "192.0.2.8", now=t) is None  # another address is not slowed
    throttle.failed(db, "guess0", "192.0.2.8", actor="x", via="test", now=t)
    throttle.failed(db, "guess0", "192.0.2.8", actor="x", via="test", now=t)
    throttle.succeeded(db, "guess0")
    with db.connect() as conn:
        keys = set(conn.execute(select(login_throttle.c.key).where(login_throttle.c.key.startswith("rule-b:")))
                   .scalars())
    assert account_key("rule-b", "guess0") not in keys and address_key("rule-b", "192.0.2.7") in keys
    # the address locks after 6 failures, whichever names they tried
    for i in range(2):
        throttle.failed(db, f"more{i}", "192.0.2.7", actor="x", via="test", now=t + 100 * (i + 1))
    assert throttle.check(db, "anyone", "192.0.2.7", now=t + 10_000).reason == "locked"
    [event] = _events(db, "login.locked", "rule-b:address:192.0.2.7")
    assert json.loads(event.payload)["address"] == "192.0.2.7"


def test_a_count_without_failures_for_forget_after_starts_over(db) -> None:
    throttle = LoginThrottle("rule-c", ThrottlePolicy(account=ThrottleRule(1, 3, forget_after=600),
                                                      address=ThrottleRule(100, 200)))
    t = 3_000_000.0
    throttle.failed(db, "sam", "198.51.100.1", actor="x", via="test", now=t)
    throttle.failed(db, "sam", "198.51.100.1", actor="x", via="test", now=t + 700)  # the first is forgotten
    assert throttle.failed(db, "sam", "198.51.100.1", actor="x", via="test", now=t + 1400) == []
    assert throttle.check(db, "sam", "198.51.100.1", now=t + 1400.5).reason == "wait"


# -- through the login form --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(db, tmp_path_factory) -> App:
    return App(db, tmp_path_factory.mktemp("throttle-app"), throttle=RULES)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app.app) as c:
        c.follow_redirects = False
        yield c


def _clear(db) -> None:
    with db.begin() as conn:
        conn.execute(login_throttle.delete().where(login_throttle.c.key.startswith("app:")))


def test_wrong_passwords_wait_then_lock_and_the_right_one_no_longer_works(db, client) -> None:
    _clear(db)
    ACCOUNTS.create_user(db, "victim-web", PASSWORD, "member", team=1)
    assert [log_in(client, "/app", "victim-web", "wrong password").status_code for _ in range(2)] == [401, 401]
    refused = log_in(client, "/app", "victim-web", PASSWORD)  # inside the wait: not even the right password
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "登录失败次数过多" in refused.text  # "too many failed log-ins", in the default language
    time.sleep(2.05)
    assert log_in(client, "/app", "victim-web", "wrong password").status_code == 401
    time.sleep(4.05)
    assert log_in(client, "/app", "victim-web", "wrong password").status_code == 401  # the 4th: locked
    locked = log_in(client, "/app", "victim-web", PASSWORD)
    assert locked.status_code == 403 and "请联系管理员解锁" in locked.text
    [event] = _events(db, "login.locked", "app:account:victim-web")
    assert event.actor == "address:testclient"
    # another account from the same address still logs in: the account was locked, not the address
    ACCOUNTS.create_user(db, "bystander-web", PASSWORD, "member", team=1)
    assert log_in(client, "/app", "bystander-web", PASSWORD).status_code == 302
    assert unlock(db, "app:account:victim-web", actor="cli:test")
    assert log_in(client, "/app", "victim-web", PASSWORD).status_code == 302


def test_guessing_many_names_from_one_address_is_slowed_by_the_address(db, client) -> None:
    _clear(db)
    for i in range(5):
        assert log_in(client, "/app", f"nobody-{i}", "whatever pass").status_code == 401
    r = log_in(client, "/app", "nobody-5", "whatever pass")
    assert r.status_code == 429, r.text
    assert not _events(db, "login.locked", "app:address:testclient")


def test_a_throttled_try_checks_no_password(db, client, monkeypatch) -> None:
    _clear(db)
    for _ in range(2):
        log_in(client, "/app", "victim2-web", "wrong password")
    checked: list[str] = []
    real = ACCOUNTS.authenticate
    monkeypatch.setattr(ACCOUNTS, "authenticate", lambda *a: checked.append(a[1]) or real(*a))
    token = form_token(client.get("/app/login").text)
    r = client.post("/app/login", data={"username": "victim2-web", "password": "x" * 9, "_csrf_token": token})
    assert r.status_code == 429 and checked == []


# -- the hashing pool: bounded, off the loop, at the lowest priority -------------------------------------


def test_the_pool_runs_at_most_its_threads_and_refuses_beyond_its_queue() -> None:
    pool = HashingPool(threads=2, waiting=3)
    release = threading.Event()
    running: list[int] = []
    lock = threading.Lock()
    peak = [0]

    def slow() -> int:
        with lock:
            running.append(1)
            peak[0] = max(peak[0], len(running))
        release.wait(5)
        with lock:
            running.pop()
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    async def main() -> tuple[list, int]:
        tasks = [asyncio.create_task(pool.run(slow)) for _ in range(5)]
        await asyncio.sleep(0.2)
        with pytest.raises(HashingBusy):
            await pool.run(slow)  # 2 running + 3 waiting: a sixth is refused at once
        release.set()
        return await asyncio.gather(*tasks), peak[0]

    priorities, most = asyncio.run(main())
    assert most == 2
    if os.uname().sysname == "Linux":
        assert set(priorities) == {19}


# -- the administrator's commands ---------------------------------------------------------------------------


def _cli(backend, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smsguard", *args], env=backend.env(), capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("realm", "command"), [("review", ["user"]), ("console", ["console", "user"])])
def test_an_admin_lists_and_lifts_locks_from_the_command_line(backend, realm: str, command: list[str]) -> None:
    from smsguard.storage import migrate

    migrate(backend.db)
    throttle = LoginThrottle(realm, ThrottlePolicy(account=ThrottleRule(1, 2), address=ThrottleRule(1, 2)))
    name = f"locked-{realm}-{time.time_ns()}"
    for _ in range(2):
        throttle.failed(backend.db, name, "203.0.113.5", actor="x", via="test")
    listed = _cli(backend, *command, "locks")
    assert listed.returncode == 0, listed.stderr
    assert f"account\t{name}\tfailures=2" in listed.stdout and "address\t203.0.113.5" in listed.stdout
    assert throttle.check(backend.db, name, "203.0.113.9").reason == "locked"
    done = _cli(backend, *command, "unlock", name)
    assert (done.returncode, done.stdout.strip()) == (0, f"{name} unlocked")
    assert throttle.check(backend.db, name, "203.0.113.9") is None
    # unlocking what is not locked is an ordinary mistake: a message, no traceback
    again = _cli(backend, *command, "unlock", name)
    assert again.returncode == 2 and "is not locked" in again.stderr and "Traceback" not in again.stderr
    assert unlock(backend.db, address_key(realm, "203.0.113.5"), actor="test")  # `unlock --address` calls this
    [event] = _events(backend.db, "login.unlocked", f"{realm}:account:{name}")
    assert event.actor.startswith("cli:")


def test_the_pool_starts_at_most_its_rate_of_checks() -> None:
    pool = HashingPool(threads=4, waiting=10, per_second=2.0, burst=2)

    async def main() -> list[str]:
        answers = []
        for _ in range(3):
            try:
                answers.append(await pool.run(lambda: "checked"))
            except HashingBusy:
                answers.append("busy")
        await asyncio.sleep(0.6)  # a token more after half a second
        answers.append(await pool.run(lambda: "checked"))
        return answers

    assert asyncio.run(main()) == ["checked", "checked", "busy", "checked"]


def test_concurrent_tries_on_a_throttled_key_get_one_password_check(db, app) -> None:
    """Flood loops waiting for the same moment: once a key is past its free failures, one try at a time is checked
    (per process); the others are told to wait without any hashing."""
    _clear(db)
    with TestClient(app.app) as c:
        c.follow_redirects = False
        for _ in range(2):
            log_in(c, "/app", "crowd-web", "wrong password")
        time.sleep(2.1)  # the wait is over: every loop tries at once
        token = form_token(c.get("/app/login").text)
        app.auth._checking.add(account_key("app", "crowd-web"))  # as if another loop's try were being checked
        try:
            r = c.post("/app/login", data={"username": "crowd-web", "password": "x" * 9, "_csrf_token": token})
        finally:
            app.auth._checking.clear()
        assert r.status_code == 429
        assert log_in(c, "/app", "crowd-web", "wrong password").status_code == 401  # alone, it is checked
