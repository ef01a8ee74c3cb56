"""Numbers in Redis are sealed or tagged, never plain (issue 15, failure 10), on a real Redis: what the
release step hands over and what the gateway worker, receipts and MO write; a worker holding another
deployment's key leaves the message in the outbox instead of crashing (issue 16: ``InvalidTag``)."""

from __future__ import annotations

import asyncio
import os

import pytest
import redis
import redis.asyncio as aioredis
from sending_helpers import run

from smsguard.phones import PhoneVault
from smsguard.sending import (
    Channel,
    GatewayWorker,
    Handover,
    InboundMessage,
    LoopbackGateway,
    MessageStore,
    OutboundMessage,
    Outbox,
    PlainPhones,
    Receipt,
    Router,
    SealError,
    VaultPhones,
    sealed_ciphertext,
)

NUMBER = "+8613912345678"


def _vault() -> PhoneVault:
    return PhoneVault(os.urandom(32), os.urandom(32))


def _everything(client: redis.Redis, namespace: str) -> str:
    """Every key name and value under ``namespace``, as one text to search."""
    out = []
    for key in client.scan_iter(match=f"{namespace}:*"):
        kind = client.type(key).decode()
        out.append(key.decode())
        if kind == "hash":
            out += [x.decode() for kv in client.hgetall(key).items() for x in kv]
        elif kind == "set":
            out += [x.decode() for x in client.smembers(key)]
        elif kind == "stream":
            out += [x.decode() for _, f in client.xrange(key) for kv in f.items() for x in kv]
        elif kind == "string":
            out.append(client.get(key).decode())
    return " ".join(out)


def test_a_vault_seal_opens_what_it_sealed_and_tags_every_spelling_alike() -> None:
    seal = VaultPhones(_vault())
    token = seal.seal(NUMBER)
    assert token.startswith("e:") and "13912345678" not in token
    assert seal.open(token) == NUMBER
    assert seal.open(NUMBER) == NUMBER  # written before sealing existed
    # a peer reports 8613912345678 (SMPP drops the +) or the national form: one orphan tag for all
    assert seal.tag(NUMBER) == seal.tag("8613912345678") == seal.tag("13912345678")
    assert "13912345678" not in seal.tag(NUMBER)
    assert seal.open(sealed_ciphertext(seal.vault.encrypt(NUMBER))) == NUMBER


def test_another_key_or_no_key_cannot_open_a_sealed_number() -> None:
    token = VaultPhones(_vault()).seal(NUMBER)
    with pytest.raises(SealError, match="phone key"):
        VaultPhones(_vault()).open(token)
    with pytest.raises(SealError, match="without the phone key"):
        PlainPhones().open(token)  # never submitted to a carrier as "e:…"


def test_nothing_plain_reaches_redis_from_hand_over_to_receipt_and_mo(redis_url: str, namespace: str) -> None:
    vault = _vault()
    seal = VaultPhones(vault)
    sync = redis.Redis.from_url(redis_url)
    outbox = Outbox(sync, namespace, ttl=3600, hold=5.0)
    epoch = outbox.open_epoch()
    result = outbox.hand_over([Handover("m1", sealed_ciphertext(vault.encrypt(NUMBER)), vault.hash(NUMBER), 0)],
                              ["您的验证码是123456"], epoch=epoch)
    assert result.codes == "s"

    async def go() -> list[str]:
        r = aioredis.Redis.from_url(redis_url)
        store = MessageStore(r, namespace, seal=seal)
        await store.ensure_groups()
        [(_, fields)] = await store.claim("c1", 10, block_ms=10)
        message = store.message({k.decode(): v.decode() for k, v in fields.items()})
        assert message.phone == NUMBER  # the adapter gets the number it must submit
        assert await store.begin(message, "gw") == "go"
        await store.on_receipt(Receipt("gw", "unknown-id", "8613912345678", "delivered", "DELIVRD"))  # an orphan
        await store.on_inbound(InboundMessage(NUMBER, "TD", "gw", "106900", True))
        raw = await r.xrange(store.events)
        await r.aclose()
        return [v.decode() for _, f in raw for k, v in f.items() if k == b"phone"]

    phones = run(go())
    assert phones and all(p.startswith("e:") for p in phones)
    everything = _everything(sync, namespace)
    assert "13912345678" not in everything, everything


def test_a_worker_with_another_key_leaves_the_message_and_a_drain_stops_with_the_reason(redis_url: str,
                                                                                namespace: str) -> None:
    ours, theirs = VaultPhones(_vault()), VaultPhones(_vault())
    sent: list[str] = []

    class Recording(LoopbackGateway):
        async def submit(self, message):  # type: ignore[no-untyped-def]
            sent.append(message.phone)
            return await super().submit(message)

    async def go() -> tuple[int, BaseException | None]:
        r = aioredis.Redis.from_url(redis_url)
        producer = MessageStore(r, namespace, seal=theirs)
        await producer.ensure_groups()
        await producer.enqueue([OutboundMessage("m-theirs", NUMBER, "hello")])
        store = MessageStore(r, namespace, seal=ours)
        worker = GatewayWorker(store, [Channel(Recording("loop"))], Router({"default": ["loop"]}), consumer="w1")
        await worker.start()
        failure: BaseException | None = None
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))  # serving: the entry is skipped, the worker keeps running
        await asyncio.sleep(1.0)
        assert not task.done()
        stop.set()
        await task
        try:  # draining (--until-idle) can never finish: it stops with the reason
            await asyncio.wait_for(worker.run(asyncio.Event(), until_idle=True), 10)
        except SealError as e:
            failure = e
        await worker.close()
        left = await store.backlog()
        await r.aclose()
        return left, failure

    left, failure = run(go())
    assert isinstance(failure, SealError) and "InvalidTag" in str(failure)
    assert left == 1 and sent == []  # left for a worker with the right key; nothing sent
