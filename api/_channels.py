"""Sending-side views: the reconciliation list and the channels, plus their lines for ``/metrics``.

* ``GET /v1/reconciliation?older_than=S&limit=N&after_batch=B&after_seq=Q`` — every recipient of the key's
  tenant handed to a gateway without a final state yet, oldest first, with its age, channel and send state
  (an admin key sees every tenant's).
* ``GET /v1/channels`` (admin key) — what ``smsguard channel list`` shows.

``/metrics`` gains ``smsguard_receipts_outstanding{channel}`` (submitted, receipt not in yet),
``smsguard_gateway_processes`` (alive now) and ``smsguard_outbox_depth``, read from Redis at scrape time.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.params import QueryParameter

from smsguard.core import ForbiddenError

from ._batch_schemas import Masked, Time, _Out
from ._batches import _as, errors


class Unsettled(_Out):
    """A recipient handed to a gateway without a final state yet, and what Redis knows of its message."""

    batch_id: int
    seq: int
    phone: Masked
    channel: str | None
    send_state: str | None
    parts: int | None
    parts_reported: int
    submitted_at: Time | None
    age_seconds: float | None


class Reconciliation(_Out):
    total: int
    items: list[Unsettled]


class ChannelRow(_Out):
    channel: str
    protocol: str
    state: Annotated[str, msgspec.Meta(description="connected | down | no gateway")]
    processes: Annotated[str, msgspec.Meta(description="Gateway processes connected / seen, e.g. 2/2")]
    circuit: str
    throughput: float  # messages per second, summed over the processes
    rate_limit: float  # messages per second the channel is throttled to (0: none)
    outstanding_receipts: int


class Channels(_Out):
    gateways: int  # gateway processes alive now
    outbox: int  # messages not yet acknowledged by a gateway
    channels: list[ChannelRow]


def _specs(settings: Any) -> Any:
    from smsguard.sending._channels import load_channels

    return load_channels(settings.channels_file)


def channels_view(ctx: Any, settings: Any) -> dict[str, Any]:
    from smsguard.sending import channel_table

    return channel_table(ctx.redis, ctx.send_namespace, _specs(settings))


def metrics_text(ctx: Any, settings: Any) -> bytes:
    """Prometheus lines for the channels (appended to /metrics)."""
    table = channels_view(ctx, settings)
    out = [
        "# HELP smsguard_receipts_outstanding Messages submitted to a channel whose receipt is not in yet",
        "# TYPE smsguard_receipts_outstanding gauge",
        *(f'smsguard_receipts_outstanding{{channel="{r["channel"]}"}} {r["outstanding_receipts"]}'
          for r in table["channels"]),
        "# HELP smsguard_gateway_processes Gateway processes that sent a heartbeat in the last seconds",
        "# TYPE smsguard_gateway_processes gauge",
        f"smsguard_gateway_processes {table['gateways']}",
        "# HELP smsguard_outbox_depth Messages in the outbox not yet acknowledged by a gateway",
        "# TYPE smsguard_outbox_depth gauge",
        f"smsguard_outbox_depth {table['outbox']}",
    ]
    return ("\n".join(out) + "\n").encode()


def handlers(batch_api: Any, guard: Any, security: Any) -> list[Any]:
    common: dict[str, Any] = {"guards": [guard], "security": security, "tags": ["sending"]}

    @get("/v1/reconciliation", summary="Submitted recipients without a final state yet, oldest first",
         responses=errors(400, 401, 503), **common)
    async def reconciliation(
        request: Request,
        older_than: Annotated[float, QueryParameter(ge=0, le=10**9)] = 0.0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        after_batch: Annotated[int, QueryParameter(ge=0, le=2**31 - 1)] = 0,
        after_seq: Annotated[int, QueryParameter(ge=0, le=2**31 - 1)] = 0,
    ) -> Reconciliation:
        from smsguard.batches._settle import reconciliation as view

        key = request.state.key
        return _as(Reconciliation, await batch_api.call(
            view, tenant_id=None if key.admin else key.tenant_id, older_than=older_than, limit=limit,
            after=(after_batch, after_seq)))

    @get("/v1/channels", summary="Channels: state, circuit, throughput, receipts outstanding (admin key)",
         responses=errors(401, 403, 503), **common)
    async def channels(request: Request) -> Channels:
        if not request.state.key.admin:
            raise ForbiddenError("the channels view needs an admin key", where="header Authorization",
                                 code="auth.forbidden")
        return _as(Channels, await batch_api.call(channels_view, batch_api.service.settings))

    return [reconciliation, channels]
