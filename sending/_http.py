"""The HTTP adapter for JSON SMS providers, configured by field names rather than code.

Submit is one JSON POST per message (the provider splits long texts itself). Receipts and MO are
pulled: ``GET`` returns a batch, the adapter hands every item to the events object, and only then
acknowledges the batch, so a crash between the two gets the same batch again (nothing lost). Providers
that push callbacks instead can feed :meth:`HttpGateway.handle_receipts` / :meth:`handle_mo` from a route.

HTTP 429 and 5xx are transient; other 4xx and a non-success ``code`` are permanent unless the code is
listed in ``transient_codes``. The message's own id travels as an idempotency key (``uid``) so a
re-sent in-doubt submit is not sent twice by providers that honour it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import json
import logging
import queue
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from smsguard.sending._gateway import (
    Gateway,
    GatewayConfigError,
    GatewayEvents,
    GatewayUnavailable,
    OutboundMessage,
    PermanentGatewayError,
    Receipt,
    SubmitInDoubt,
    SubmitResult,
    TransientGatewayError,
    inbound,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class HttpProviderConfig:
    base_url: str
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    send_path: str = "/v1/sms/send"
    # request JSON: provider field -> template over {id}, {phone}, {text}, {sender}, {tenant}
    request_template: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"mobile": "{phone}", "content": "{text}", "extno": "{sender}", "uid": "{id}"}
    )
    static_fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    id_field: str = "msgid"
    code_field: str = "code"
    ok_codes: tuple[Any, ...] = (0, "0")
    transient_codes: tuple[Any, ...] = ()
    reports_path: str | None = "/v1/sms/reports"
    reports_ack_path: str | None = "/v1/sms/reports/ack"
    mo_path: str | None = "/v1/sms/mo"
    mo_ack_path: str | None = "/v1/sms/mo/ack"
    batch_field: str = "batch"
    items_field: str = "items"
    report_fields: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"gateway_id": "msgid", "phone": "mobile", "stat": "status", "error": "code"}
    )
    delivered_values: tuple[str, ...] = ("DELIVRD", "DELIVERED", "0")
    expired_values: tuple[str, ...] = ("EXPIRED",)
    mo_fields: dict[str, str] = dataclasses.field(
        default_factory=lambda: {"phone": "mobile", "text": "content", "to": "extno"}
    )
    poll_interval: float = 0.5
    timeout: float = 5.0


class _Pool:
    """Keep-alive ``http.client`` connections, one per worker thread at a time."""

    def __init__(self, base_url: str, size: int, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise GatewayConfigError(f"not an http(s) URL: {base_url!r}", where="base_url")
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._idle: queue.SimpleQueue[http.client.HTTPConnection] = queue.SimpleQueue()
        self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="sms-http")

    def _conn(self) -> http.client.HTTPConnection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            return cls(self.host, self.port, timeout=self.timeout)

    def request(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any, bool]:
        """(status, JSON body or None, sent): ``sent`` tells whether the request may have reached the peer."""
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        hdrs = {"Content-Type": "application/json", "Accept": "application/json", **headers}
        conn = self._conn()
        sent = False
        try:
            conn.request(method, self.prefix + path, body=data, headers=hdrs)
            sent = True
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise _Failed(str(e), sent) from None
        self._idle.put(conn)
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        return resp.status, payload, True

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class _Failed(Exception):
    def __init__(self, message: str, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


def _dig(obj: Any, field: str) -> Any:
    for key in field.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


class HttpGateway(Gateway):
    kind = "http"

    def __init__(self, name: str, config: HttpProviderConfig, *, window: int = 16) -> None:
        super().__init__(name, window=window)
        self.config = config
        self._pool = _Pool(config.base_url, min(window, 32), config.timeout)
        self._poller: asyncio.Task[None] | None = None
        self._up = False

    @property
    def connected(self) -> bool:
        return self._up

    async def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, bool]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool.executor, self._pool.request, method, path, self.config.headers, body
        )

    async def start(self, events: GatewayEvents) -> None:
        self.events = events
        self._up = True
        if self.config.reports_path or self.config.mo_path:
            self._poller = asyncio.create_task(self._poll_forever())

    async def _submit(self, message: OutboundMessage) -> SubmitResult:
        cfg = self.config
        values = message.to_fields()
        body = {**cfg.static_fields, **{k: v.format_map(values) for k, v in cfg.request_template.items()}}
        try:
            status, payload, _ = await self._call("POST", cfg.send_path, body)
        except _Failed as e:
            if e.sent:
                raise SubmitInDoubt(f"no response: {e}", where=self.where) from None
            raise GatewayUnavailable(f"cannot reach provider: {e}", where=self.where) from None
        code = _dig(payload, cfg.code_field)
        carrier = f"http:{status}" if code is None else f"http:{status}:{code}"
        if status == 429 or status >= 500:
            raise TransientGatewayError(f"HTTP {status}", where=self.where, carrier_code=carrier)
        if status >= 400:
            raise PermanentGatewayError(f"HTTP {status}", where=self.where, carrier_code=carrier)
        if code not in cfg.ok_codes:
            msg = f"provider code {code}: {_dig(payload, 'msg') or ''}".strip()
            if code in cfg.transient_codes:
                raise TransientGatewayError(msg, where=self.where, carrier_code=carrier)
            raise PermanentGatewayError(msg, where=self.where, carrier_code=carrier)
        gateway_id = _dig(payload, cfg.id_field)
        if not gateway_id:
            raise PermanentGatewayError("accepted without a message id", where=self.where, carrier_code=carrier)
        return SubmitResult(message.id, self.name, (str(gateway_id),))

    # -- receipts and MO ------------------------------------------------------------------------------

    def _receipt(self, item: dict[str, Any]) -> Receipt:
        f = self.config.report_fields
        stat = str(_dig(item, f["stat"]) or "")
        err = str(_dig(item, f.get("error", "")) or "") if f.get("error") else ""
        if stat in self.config.delivered_values:
            status, carrier = "delivered", stat
        elif stat in self.config.expired_values:
            status, carrier = "expired", stat
        else:
            status, carrier = "failed", f"{stat}:{err}" if err else stat
        return Receipt(self.name, str(_dig(item, f["gateway_id"])), str(_dig(item, f["phone"]) or ""), status, carrier)  # type: ignore[arg-type]

    async def handle_receipts(self, items: list[dict[str, Any]]) -> None:
        """Feed pushed (callback) receipts; returns once every one is durable."""
        for item in items:
            await self.events.on_receipt(self._receipt(item))

    async def handle_mo(self, items: list[dict[str, Any]]) -> None:
        f = self.config.mo_fields
        for item in items:
            to = str(_dig(item, f["to"]) or "") if f.get("to") else ""
            await self.events.on_inbound(
                inbound(str(_dig(item, f["phone"]) or ""), str(_dig(item, f["text"]) or ""), self.name, to)
            )

    async def _poll_once(self, path: str | None, ack_path: str | None, handler: Any) -> int:
        if not path:
            return 0
        status, payload, _ = await self._call("GET", path)
        if status != 200 or not isinstance(payload, dict):
            return 0
        items = payload.get(self.config.items_field) or []
        if items:
            await handler(items)  # durable before the ack below
        batch = payload.get(self.config.batch_field)
        if items and ack_path and batch:
            await self._call("POST", ack_path, {self.config.batch_field: batch})
        return len(items)

    async def _poll_forever(self) -> None:
        cfg = self.config
        while True:
            got = 0
            try:
                got += await self._poll_once(cfg.reports_path, cfg.reports_ack_path, self.handle_receipts)
                got += await self._poll_once(cfg.mo_path, cfg.mo_ack_path, self.handle_mo)
            except _Failed as e:
                log.warning("%s: polling failed: %s", self.where, e)
            except Exception:
                log.exception("%s: could not hand over receipts; the provider keeps them", self.where)
            if not got:
                await asyncio.sleep(cfg.poll_interval)

    async def close(self) -> None:
        self._up = False
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(BaseException):
                await self._poller
        self._pool.close()
