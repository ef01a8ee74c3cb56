"""Idempotency-Key across a crash (issue 17): a real ``smsguard serve`` SIGKILLs itself at the worst moments of a
keyed request (the test-only ``SMSGUARD_TEST_IDEMPOTENCY_CRASH`` hook in api/_idempotency.py), is started again on
the same data, and the client's retries with the same key end with exactly one message and one verification:

* killed after the key was claimed, before anything was made: the retry (another process) runs the request;
* killed after the message (its batch, message row and the key naming it, one transaction) was committed but
  before the answer was stored: the retry resumes that message (submits it) instead of making a second one;
* the same for ``/v1/verify`` (the verification row, with the code's hash, is in that transaction too) and for
  ``POST /v1/batches`` (the batch and the key);
* a further retry replays the stored answer (``Idempotent-Replayed: true``), byte for byte.

No retry waits for the 60 s lock: the claim's owner (host, pid, start time) is gone, so it is taken over at once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from serve_support import free_port, start, stop, wait_ready

FAULT_ENV = "SMSGUARD_TEST_IDEMPOTENCY_CRASH"  # settings.test_idempotency_crash

SIGNATURE = "示例商城"
TEXT = f"【{SIGNATURE}】您的订单已发货，请注意查收。"
MESSAGE_TO, VERIFY_TO = "13800138021", "13800138022"
BATCH_TO = ["13800138031", "13800138032"]


def _env(tmp_path: Path, fault: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGUARD_", "DATABASE_URL", "REDIS_URL"))}
    env["SMSGUARD_DATA_DIR"] = str(tmp_path / "var")
    if fault:
        env[FAULT_ENV] = fault
    return env


class Serve:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path, self.runs = tmp_path, 0

    def up(self, fault: str | None) -> tuple[subprocess.Popen, str]:
        self.runs += 1
        port, log = free_port(), self.tmp_path / f"serve-{self.runs}.log"
        proc = start(["serve", "--port", str(port)], _env(self.tmp_path, fault), log)
        wait_ready(port, proc, log, timeout=90)
        return proc, f"http://127.0.0.1:{port}"


def _killed_by_itself(proc: subprocess.Popen, base: str, path: str, headers: dict, body: dict) -> None:
    """The request never gets an answer: the process SIGKILLs itself in the middle of it."""
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"{base}{path}", headers=headers, json=body, timeout=60)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def test_a_retry_after_a_crash_makes_exactly_one_message_verification_and_batch(tmp_path: Path) -> None:
    serve = Serve(tmp_path)
    proc, base = serve.up("after_claim")
    try:
        log = (tmp_path / "serve-1.log").read_text()
        key = re.search(r"\b(sg_[A-Za-z0-9_-]+)", log).group(1)
        auth = {"Authorization": f"Bearer {key}"}
        message = {"to": MESSAGE_TO, "text": TEXT}
        verify = {"to": VERIFY_TO, "signature": SIGNATURE}
        k_message = {**auth, "Idempotency-Key": "order-1-message"}
        k_verify = {**auth, "Idempotency-Key": "login-1-code"}
        batch = {"name": "crash", "content": TEXT, "numbers": BATCH_TO, "kind": "notification",
                 "signature": SIGNATURE}
        k_batch = {**auth, "Idempotency-Key": "campaign-1"}
        # 1. killed with the key claimed and nothing made
        _killed_by_itself(proc, base, "/v1/messages", k_message, message)
        # 2. the retry takes the dead process's claim at once, makes the message, and is killed before answering
        proc, base = serve.up("after_effects")
        _killed_by_itself(proc, base, "/v1/messages", k_message, message)
        # 3. a verification made (message, verification, key: one transaction), killed before answering
        proc, base = serve.up("after_effects")
        _killed_by_itself(proc, base, "/v1/verify", k_verify, verify)
        # 4. a batch made (batch and key: one transaction), killed before its submit's answer was stored
        proc, base = serve.up("after_effects")
        _killed_by_itself(proc, base, "/v1/batches", k_batch, batch)
        # 5. a process without the hook: the retries resume what was made, then replay their answers
        proc, base = serve.up(None)
        made = httpx.post(f"{base}/v1/batches", headers=k_batch, json=batch, timeout=60)
        assert made.status_code == 201 and made.json()["state"] not in ("draft", "screening"), made.text
        assert httpx.post(f"{base}/v1/batches", headers=k_batch, json=batch, timeout=60).content == made.content
        before = httpx.get(f"{base}/v1/batches/{made.json()['id'] - 1}", headers=auth, timeout=30).json()
        assert before["total"] == 1  # the verification's one-recipient batch: no batch was made twice
        assert httpx.get(f"{base}/v1/batches/{made.json()['id'] + 1}", headers=auth, timeout=30).status_code == 404
        first = httpx.post(f"{base}/v1/messages", headers=k_message, json=message, timeout=60)
        assert first.status_code in (201, 202), first.text
        assert "Idempotent-Replayed" not in first.headers
        again = httpx.post(f"{base}/v1/messages", headers=k_message, json=message, timeout=60)
        assert again.status_code == first.status_code and again.content == first.content
        assert again.headers["Idempotent-Replayed"] == "true"
        code = httpx.post(f"{base}/v1/verify", headers=k_verify, json=verify, timeout=60)
        assert code.status_code == 201, code.text
        assert code.json()["status"] == "pending" and code.json()["message"]["state"] not in ("draft", "cancelled")
        assert httpx.post(f"{base}/v1/verify", headers=k_verify, json=verify, timeout=60).content == code.content

        def listed(phone: str) -> list[dict]:
            r = httpx.get(f"{base}/v1/messages", headers=auth, params={"phone": phone}, timeout=30)
            assert r.status_code == 200, r.text
            return r.json()["messages"]

        assert [m["id"] for m in listed(MESSAGE_TO)] == [first.json()["id"]]  # exactly one message
        assert [m["id"] for m in listed(VERIFY_TO)] == [code.json()["message"]["id"]]
        assert first.json()["state"] not in ("draft", "cancelled")  # the resumed message was submitted
        # the verification the crashed request made is the one the retry answered, and it checks
        wrong = httpx.post(f"{base}/v1/verify/check", headers=auth, timeout=30,
                           json={"verification_id": code.json()["id"], "code": "zz"})
        assert wrong.status_code == 400 and wrong.json()["code"] == "verify.mismatch", wrong.text
        stats = httpx.get(f"{base}/v1/verify/stats", headers=auth, timeout=30)
        assert stats.status_code == 200 and stats.json()["sent"] == 1, stats.text  # the send counted once
    finally:
        if proc.poll() is None:
            stop(proc)
