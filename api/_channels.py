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

from litestar import Request, get
from litestar.params import QueryParameter

from smsguard.core import ForbiddenError

from ._batches import errors


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
    ) -> dict[str, Any]:
        from smsguard.batches._settle import reconciliation as view

        key = request.state.key
        return await batch_api.call(view, tenant_id=None if key.admin else key.tenant_id, older_than=older_than,
                                    limit=limit, after=(after_batch, after_seq))

    @get("/v1/channels", summary="Channels: state, circuit, throughput, receipts outstanding (admin key)",
         responses=errors(401, 403, 503), **common)
    async def channels(request: Request) -> dict[str, Any]:
        if not request.state.key.admin:
            raise ForbiddenError("the channels view needs an admin key", where="header Authorization",
                                 code="auth.forbidden")
        return await batch_api.call(channels_view, batch_api.service.settings)

    return [reconciliation, channels]
