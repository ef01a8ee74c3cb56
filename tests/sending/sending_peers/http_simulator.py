"""A local JSON SMS provider over HTTP: the real peer of the HTTP adapter in tests and demos.

    python -m sending_peers.http_simulator --port 8088 [--token T] [--journal FILE]

API (the shape of typical Chinese HTTP SMS providers; the adapter's field names are configurable):

* ``POST /v1/sms/send`` ``{"mobile", "content", "extno", "uid"}`` → ``{"code": 0, "msgid": "…"}``; a
  repeated ``uid`` returns the first msgid (idempotent). Numbers pick a behaviour (``sending/_loopback.py``):
  9001 → HTTP 429 twice, 9002 → ``{"code": 1003}`` (refused), 9003 → report ``UNDELIV``, 9004 → ``EXPIRED``;
  ``…9005`` → HTTP 503 twice. A ``MO:`` text makes the handset reply.
* ``GET /v1/sms/reports`` / ``GET /v1/sms/mo`` → ``{"batch": "…", "items": [...]}``: the same batch is
  returned until ``POST /v1/sms/reports/ack`` (or ``/v1/sms/mo/ack``) ``{"batch": "…"}`` acknowledges it.

Requests need ``Authorization: Bearer TOKEN``. Listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from smsguard.sending._loopback import MO_PREFIX, THROTTLE_TIMES, scenario


class _State:
    def __init__(self, token: str, journal: Path | None) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.prefix = os.urandom(3).hex()
        self.by_uid: dict[str, str] = {}
        self.attempts: dict[tuple[str, str], int] = {}
        self.reports: list[dict[str, Any]] = []
        self.mo: list[dict[str, Any]] = []
        self.batches: dict[str, tuple[str, list[dict[str, Any]]]] = {}  # kind -> (batch id, items)
        self.batch_ids = itertools.count(1)
        self.journal = journal.open("a", encoding="utf-8") if journal else None

    def log(self, record: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.journal.flush()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {self.server.state.token}":
            self._reply(401, {"code": 401, "msg": "bad token"})
            return False
        return True

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:
        if not self._authorized():
            return
        kind = {"/v1/sms/reports": "reports", "/v1/sms/mo": "mo"}.get(self.path)
        if kind is None:
            self._reply(404, {"code": 404})
            return
        st = self.server.state
        with st.lock:
            if kind not in st.batches:
                queue: list[dict[str, Any]] = getattr(st, kind)
                items, queue[:] = queue[:500], queue[500:]
                if not items:
                    self._reply(200, {"batch": "", "items": []})
                    return
                st.batches[kind] = (f"{kind}-{next(st.batch_ids)}", items)
            batch, items = st.batches[kind]
        self._reply(200, {"batch": batch, "items": items})

    def do_POST(self) -> None:
        if not self._authorized():
            return
        st = self.server.state
        body = self._body()
        if self.path in ("/v1/sms/reports/ack", "/v1/sms/mo/ack"):
            kind = "reports" if "reports" in self.path else "mo"
            with st.lock:
                if kind in st.batches and st.batches[kind][0] == body.get("batch"):
                    st.batches.pop(kind)
            self._reply(200, {"code": 0})
            return
        if self.path != "/v1/sms/send":
            self._reply(404, {"code": 404})
            return
        phone, text, uid = str(body.get("mobile", "")), str(body.get("content", "")), str(body.get("uid", ""))
        if not phone or not text:
            self._reply(400, {"code": 1001, "msg": "mobile and content are required"})
            return
        kind = scenario(phone)
        with st.lock:
            if uid and uid in st.by_uid:
                self._reply(200, {"code": 0, "msgid": st.by_uid[uid], "duplicate": True})
                return
            if kind == "throttle" or phone.endswith("9005"):
                key = (phone, text)
                st.attempts[key] = st.attempts.get(key, 0) + 1
                if st.attempts[key] <= THROTTLE_TIMES:
                    status = 429 if kind == "throttle" else 503
                    self._reply(status, {"code": status, "msg": "slow down" if status == 429 else "busy"})
                    return
            if kind == "reject":
                self._reply(200, {"code": 1003, "msg": "invalid mobile"})
                return
            msgid = f"{st.prefix}{next(st.ids):010d}"
            if uid:
                st.by_uid[uid] = msgid
            st.log({"event": "accepted", "msgid": msgid, "dest": phone, "text": text, "uid": uid})
            stat = {"undeliv": "UNDELIV", "expired": "EXPIRED"}.get(kind, "DELIVRD")
            code = "005" if stat == "UNDELIV" else ""
            st.reports.append({"msgid": msgid, "mobile": phone, "status": stat, "code": code})
            if text.startswith(MO_PREFIX):
                st.mo.append({"mobile": phone, "content": text[len(MO_PREFIX) :], "extno": body.get("extno", "")})
        self._reply(200, {"code": 0, "msgid": msgid})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        super().__init__(address, _Handler)
        self.state = state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8088)
    parser.add_argument("--token", default="secret")
    parser.add_argument("--journal")
    args = parser.parse_args(argv)
    server = _Server(("127.0.0.1", args.port), _State(args.token, Path(args.journal) if args.journal else None))
    print(f"READY {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
