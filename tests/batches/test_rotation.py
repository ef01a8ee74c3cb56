"""``keys rotate``: every stored number re-encrypted under the new phone key, in chunks, resumable, on both
backends; afterwards the old key can go. On a database of its own: the session's shared one must keep its keys."""

from __future__ import annotations

import dataclasses
import io
import os

from sqlalchemy import select

from smsguard import batches
from smsguard.batches import PhoneVault, parse_phone, rotate_phone_keys
from smsguard.batches._tables import contacts, optouts, recipients
from smsguard.core import load_secrets
from smsguard.runtime import Runtime
from smsguard.storage import create_tenant


def _blobs(db) -> list[bytes]:
    with db.connect() as conn:
        return [bytes(b) for t in (contacts, optouts, recipients)
                for (b,) in conn.execute(select(t.c.phone_enc).where(t.c.phone_enc.is_not(None)))]


def test_rotate_re_encrypts_everything_resumably(backend, batch_engine) -> None:
    settings = backend.settings(database_url=backend.scratch_database_url())
    secrets = load_secrets(settings)
    with Runtime(settings, screening=batch_engine) as runtime:
        ctx = runtime.batch_context()
        tenant = create_tenant(runtime.db, "rotation").id
        batches.import_contacts(ctx, tenant, "rot", io.BytesIO(b"phone\n13812340001\n13812340002\n13812340003\n"))
        batches.opt_out(ctx, phone=parse_phone("13812340009"), tenant_id=tenant, actor="test")
        batches.create_batch(ctx, tenant, content="【示例商城】您的快递已到驿站。",
                             numbers=["13812340004", "13812340005"])
        stored = len(_blobs(runtime.db))
        assert stored == 6
        new = os.urandom(32)
        both = PhoneVault([(9, new), *secrets.phone_keys], secrets.phone_hash_key)
        first = rotate_phone_keys(runtime.db, both, chunk=2, max_chunks=1)  # interrupted after one chunk
        assert first.total_rotated == 2
        rest = rotate_phone_keys(runtime.db, both, chunk=2)  # run again: picks up the rest
        assert rest.total_rotated == stored - 2 and sum(rest.already.values()) == 2
        assert rotate_phone_keys(runtime.db, both).total_rotated == 0  # nothing left
        only_new = PhoneVault([(9, new)], secrets.phone_hash_key)  # the old key can go now
        numbers = {only_new.decrypt(b) for b in _blobs(runtime.db)}
        assert numbers == {f"+86138123400{i:02d}" for i in (1, 2, 3, 4, 5, 9)}
        ctx_new = dataclasses.replace(ctx, vault=only_new)
        status = batches.optout_status(ctx_new, phone=parse_phone("13812340009"), tenant_id=tenant)
        assert status["tenant"] is True  # the hash key did not change: lookups still find the number
