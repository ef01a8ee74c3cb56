"""``smsguard serve`` alone (embedded defaults, every role) pushes a batch's delivery reports to a tenant's
webhook: the relay writes each report and its event in one transaction, the ``webhooks`` role delivers them
to a real receiver process; the receiver's first answers fail and are retried."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import httpx
from serve_support import free_port, start, stop, wait_ready
from webhook_support import wait_for

import smsguard.webhooks as webhooks

NUMBERS = ["13800138001", "13800138002", "13900009003", "18912345678"]  # …9003: loopback reports it failed


def test_serve_delivers_a_batchs_reports_to_the_tenants_webhook(tmp_path: Path, receiver) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGUARD_", "DATABASE_URL", "REDIS_URL"))}
    env.update(SMSGUARD_DATA_DIR=str(tmp_path / "var"), SMSGUARD_WEBHOOK_RETRY_BASE="0.1",
               SMSGUARD_WEBHOOK_ALLOW_PRIVATE="1")  # the receiver listens on 127.0.0.1
    port, log = free_port(), tmp_path / "serve.log"
    proc = start(["serve", "--port", str(port)], env, log)
    try:
        wait_ready(port, proc, log, timeout=60)
        key = re.search(r"\b(sg_[A-Za-z0-9_-]+)", log.read_text()).group(1)
        assert "webhooks" in log.read_text().split("roles ")[-1]
        base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
        receiver.script("/reports", ["500", "close"])
        r = httpx.post(f"{base}/v1/webhooks", headers=auth, timeout=30,
                       json={"url": receiver.url("/reports"), "events": ["message.delivered", "message.failed"]})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        r = httpx.post(f"{base}/v1/batches", headers=auth, timeout=30,
                       json={"name": "hooks", "content": "【示例商城】您的订单已发货，请注意查收。", "numbers": NUMBERS,
                             "kind": "notification", "signature": "示例商城"})
        assert r.status_code == 201, r.text
        batch_id = r.json()["id"]

        def answered() -> list[dict]:
            got = [x for x in receiver.log("/reports") if x["action"] == "200"]
            return got if len(got) >= 4 else []

        ok = wait_for(answered, timeout=120, what="four reports")
    finally:
        stop(proc)
    bodies = [json.loads(x["body"]) for x in ok]
    assert Counter(b["type"] for b in bodies) == {"message.delivered": 3, "message.failed": 1}
    subjects = {b["subject"] for b in bodies}
    assert len(subjects) == 4 and all(s.startswith(f"message:{batch_id}-") for s in subjects)
    assert all(b["data"]["batch_id"] == batch_id and "****" in b["data"]["phone"] for b in bodies)
    assert not any(n in x["body"] for n in NUMBERS for x in receiver.log("/reports"))
    assert all(webhooks.verify(x["headers"]["x-smsguard-signature"], x["body"].encode(), secret,
                               now=x["at"]) for x in ok)
