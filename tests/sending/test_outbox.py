"""The outbox contract: what the release step (``Outbox``) and the gateway workers (``MessageStore``) may
rely on, on a real Redis. Hand-over (idempotent, guarded), claim, acknowledge (and trim), epochs, and
re-drive after Redis lost its data (simulated by deleting this test's namespace: the shared Redis is
never flushed)."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from sending_helpers import run

from smsguard.sending import (
    Cap,
    EpochChanged,
    Handover,
    MessageStore,
    OutboundMessage,
    Outbox,
    Redrive,
    SubmitResult,
)

TEXTS = ["hello", "world"]


@pytest.fixture
def outbox(redis_url: str, namespace: str) -> Outbox:
    return Outbox(redis.Redis.from_url(redis_url), namespace, ttl=3600, hold=5.0)


def _lose_everything(outbox: Outbox) -> None:
    keys = list(outbox.redis.scan_iter(match=f"{outbox.ns}:*", count=1000))
    if keys:
        outbox.redis.delete(*keys)


def _claim_all(redis_url: str, namespace: str, *, ack: bool) -> list[OutboundMessage]:
    async def go() -> list[OutboundMessage]:
        r = aioredis.Redis.from_url(redis_url)
        store = MessageStore(r, namespace)
        got = await store.claim("c1", 100, block_ms=10)
        if ack:
            await store.ack([e for e, _ in got])
        await r.aclose()
        return [OutboundMessage.from_fields({k.decode(): v.decode() for k, v in f.items()}) for _, f in got]

    return run(go())


def test_hand_over_is_idempotent_and_guarded(outbox: Outbox, redis_url: str, namespace: str) -> None:
    epoch = outbox.open_epoch()
    assert outbox.epoch() == epoch and outbox.open_epoch() == epoch  # the existing epoch wins
    oo = (f"{namespace}:oo:0:", f"{namespace}:oo:1:", f"{namespace}:oo:1:sig")
    outbox.redis.sadd(oo[1], "h-redis-out")
    cap = Cap(f"{namespace}:cap:test", 1, 60)
    msgs = [
        Handover("m1", "+8613800000001", "h1", 0),
        Handover("m2", "+8613800000002", "h-sql-out", 1, opted_out=True),
        Handover("m3", "+8613800000003", "h-redis-out", 1),
        Handover("m4", "+8613800000004", "h1", 1),  # the same number again: its cap (1) is full
    ]
    res = outbox.hand_over(msgs, TEXTS, epoch=epoch, sender="1069", tenant="t", optout_sets=oo, caps=[cap])
    assert res.codes == "sooc" and res.first_entry and res.first_entry == res.last_entry
    again = outbox.hand_over(msgs[:1], TEXTS, epoch=epoch, optout_sets=oo, caps=[cap])
    assert again.codes == "a" and again.first_entry == ""  # at most once per id, never counted twice
    assert outbox.redis.xlen(outbox.stream) == 1
    assert 0 < outbox.redis.ttl(f"{namespace}:msg:m1") <= 3600  # send state expires

    with pytest.raises(EpochChanged):  # decided against a Redis that has since lost its data: refused
        outbox.hand_over([Handover("m5", "+8613800000005", "h5", 0)], TEXTS, epoch="stale")
    assert not outbox.exists("m5")

    [m] = _claim_all(redis_url, namespace, ack=True)
    assert (m.id, m.phone, m.text, m.sender, m.tenant) == ("m1", "+8613800000001", "hello", "1069", "t")
    assert outbox.redis.xlen(outbox.stream) == 0  # acknowledged entries are deleted: trimmed by the ack


def test_redrive_after_redis_lost_its_data(outbox: Outbox, redis_url: str, namespace: str) -> None:
    epoch = outbox.open_epoch()
    outbox.hand_over([Handover("kept", "+8613800000009", "h9", 0)], TEXTS, epoch=epoch)
    _lose_everything(outbox)
    assert outbox.epoch() is None
    epoch = outbox.open_epoch()
    outbox.hand_over([Handover("kept", "+8613800000009", "h9", 0)], TEXTS, epoch=epoch)
    codes = outbox.redrive(
        [
            Redrive("kept", "+8613800000009", "hello"),
            Redrive("lost", "+8613800000010", "world", "1069", "t"),
            Redrive("taken", "+8613800000011", "world", gateway="cmpp", gateway_ids=("G1", "G2")),
        ],
        epoch=epoch,
    )
    assert codes == "adk"
    assert outbox.redis.get(f"{namespace}:gwid:cmpp:G2") == b"taken"  # its late receipt still maps
    with pytest.raises(EpochChanged):
        outbox.redrive([Redrive("x", "+8613800000012", "hello")], epoch="stale")

    async def go() -> tuple[str, str, str]:
        r = aioredis.Redis.from_url(redis_url)
        store = MessageStore(r, namespace)
        states = (
            await store.begin(OutboundMessage("lost", "+8613800000010", "world"), "cmpp"),
            await store.begin(OutboundMessage("taken", "+8613800000011", "world"), "cmpp"),
            await store.record_submitted(SubmitResult("kept", "cmpp", ("G9",))),
        )
        await r.aclose()
        return states

    lost, taken, kept = run(go())
    assert lost.startswith("hold:") and 0 < int(lost.split(":")[1]) <= 5000  # may have gone: waits for a receipt
    assert taken == "done"  # SQL knew the gateway took it: never sent again
    assert kept == "submitted"
    ids = [m.id for m in _claim_all(redis_url, namespace, ack=False)]
    assert sorted(ids) == ["kept", "lost"]


def test_gateway_side_survives_a_lost_group(outbox: Outbox, redis_url: str, namespace: str) -> None:
    """NOGROUP (the stream and its group are gone): a claim recreates them instead of killing the worker."""
    async def go() -> int:
        r = aioredis.Redis.from_url(redis_url)
        store = MessageStore(r, namespace)
        await store.ensure_groups()
        await r.delete(store.outbox)
        assert await store.claim("c1", 10, block_ms=10) == []
        assert await store.backlog() == 0
        await r.delete(store.outbox)
        got = await store.recover("c1")
        await r.aclose()
        return len(got)

    assert run(go()) == 0
    epoch = outbox.open_epoch()
    outbox.hand_over([Handover("after", "+8613800000013", "h13", 0)], TEXTS, epoch=epoch)
    assert [m.id for m in _claim_all(redis_url, namespace, ack=True)] == ["after"]


def test_calls_of_one_batched_script_share_an_evalsha_and_keep_their_own_errors(redis_url: str,
                                                                                  namespace: str) -> None:
    """The store's per-message scripts run as one EVALSHA per loop turn (sending/_pipelining.py): every caller gets
    its own result, an item that fails (here a WRONGTYPE) its own error, and the others are applied all the same."""
    from redis.exceptions import ResponseError

    from smsguard.sending._pipelining import BatchScript, Pipeliner

    async def scenario() -> None:
        r = aioredis.Redis.from_url(redis_url)
        try:
            await r.set(f"{namespace}:not-a-hash", "x")
            script = BatchScript(r, "local function one(key, value)\n"
                                    "  redis.call('HSET', key, 'v', value)\n  return 'set:' .. value\nend\n")
            pipeliner = Pipeliner(r)
            keys = [f"{namespace}:h{i}" for i in range(5)] + [f"{namespace}:not-a-hash"]
            results = await asyncio.gather(*(pipeliner.batch(script, [k, str(i)]) for i, k in enumerate(keys)),
                                           return_exceptions=True)
            assert results[:5] == [f"set:{i}".encode() for i in range(5)]
            assert isinstance(results[5], ResponseError) and "WRONGTYPE" in str(results[5])
            assert [await r.hget(k, "v") for k in keys[:5]] == [str(i).encode() for i in range(5)]
            assert pipeliner.round_trips == 1  # six callers, one EVALSHA (first NOSCRIPT, then loaded and re-run)
        finally:
            await r.aclose()

    run(scenario())
