"""The console's statistics at millions of recipients (issue 19 point 3): ``recipient_rollup``, recipients counted
per batch × state × carrier × failure code with their cost, kept by triggers on ``recipients`` so every change of a
recipient (insert, state change, delete) updates it in the same transaction, whichever code path makes it.

SQLite: row triggers (an upsert per changed row). PostgreSQL: statement triggers over transition tables (one
grouped upsert per statement, so a 5,000-row hand-over is one upsert of a few rows, not 5,000). The cost of a
recipient is its content's cost divided by the content's recipients, counted once it reached a carrier (the
states ``HANDED_OVER`` of ``batches._view``). Existing recipients are counted in by the upgrade.

Revision ID: consolestats_0001
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "consolestats_0001"
down_revision = "0001"
branch_labels = ("consolestats",)
depends_on = ("batches_0001",)

HANDED = "('submitted', 'delivered', 'failed', 'expired', 'unknown')"
FAILED = "('failed', 'expired', 'unknown', 'rejected', 'refused')"
KEY = "batch_id, status, carrier, code"


def code(x: str) -> str:
    what = f"coalesce({x}.carrier_code, {x}.detail, {x}.status)"
    return f"CASE WHEN {x}.status IN {FAILED} THEN substr({what}, 1, 64) ELSE '' END"


def sqlite_cost(x: str) -> str:
    return (
        f"CASE WHEN {x}.status IN {HANDED} THEN coalesce((SELECT c.cost_micros / max(c.recipients, 1) "
        f"FROM batch_contents c WHERE c.batch_id = {x}.batch_id AND c.content_id = {x}.content_id), 0) ELSE 0 END"
    )


def sqlite_upsert(x: str, sign: str) -> str:
    return (
        f"INSERT INTO recipient_rollup ({KEY}, n, cost_micros) VALUES ({x}.batch_id, {x}.status, {x}.carrier, "
        f"{code(x)}, {sign}1, {sign}({sqlite_cost(x)})) ON CONFLICT ({KEY}) DO UPDATE SET "
        "n = n + excluded.n, cost_micros = cost_micros + excluded.cost_micros;"
    )


def pg_rows(table: str, sign: str) -> str:
    cost = f"CASE WHEN x.status IN {HANDED} THEN coalesce(c.cost_micros / GREATEST(c.recipients, 1), 0) ELSE 0 END"
    return (
        f"SELECT x.batch_id, x.status, x.carrier, {code('x')} AS code, {sign}1 AS dn, {sign}({cost}) AS dc "
        f"FROM {table} x LEFT JOIN batch_contents c ON c.batch_id = x.batch_id AND c.content_id = x.content_id"
    )


def pg_upsert(source: str) -> str:
    # ordered by the key: two statements locking the same counters take them in the same order (no deadlock)
    return (
        f"INSERT INTO recipient_rollup AS r ({KEY}, n, cost_micros) SELECT {KEY}, sum(dn), sum(dc) FROM "
        f"({source}) d GROUP BY {KEY} HAVING sum(dn) <> 0 OR sum(dc) <> 0 ORDER BY {KEY} "
        f"ON CONFLICT ({KEY}) DO UPDATE SET n = r.n + EXCLUDED.n, cost_micros = r.cost_micros + EXCLUDED.cost_micros;"
    )


def upgrade() -> None:
    op.create_table(
        "recipient_rollup",
        # no foreign key: a deleted batch's recipients are counted out by the delete trigger as they cascade
        sa.Column("batch_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(10), primary_key=True),
        sa.Column("carrier", sa.String(10), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("cost_micros", sa.BigInteger, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
CREATE FUNCTION recipient_rollup_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {pg_upsert(pg_rows("new_rows", "+"))}
  ELSIF TG_OP = 'UPDATE' THEN
    {pg_upsert(pg_rows("old_rows", "-") + " UNION ALL " + pg_rows("new_rows", "+"))}
  ELSE
    {pg_upsert(pg_rows("old_rows", "-"))}
  END IF;
  RETURN NULL;
END $$""")
        op.execute(
            "CREATE TRIGGER recipient_rollup_ins AFTER INSERT ON recipients REFERENCING NEW TABLE AS new_rows "
            "FOR EACH STATEMENT EXECUTE FUNCTION recipient_rollup_apply()"
        )
        op.execute(
            "CREATE TRIGGER recipient_rollup_upd AFTER UPDATE ON recipients REFERENCING OLD TABLE AS old_rows "
            "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION recipient_rollup_apply()"
        )
        op.execute(
            "CREATE TRIGGER recipient_rollup_del AFTER DELETE ON recipients REFERENCING OLD TABLE AS old_rows "
            "FOR EACH STATEMENT EXECUTE FUNCTION recipient_rollup_apply()"
        )
        backfill = pg_upsert(pg_rows("recipients", "+"))
    else:
        op.execute(
            f"CREATE TRIGGER recipient_rollup_ins AFTER INSERT ON recipients BEGIN {sqlite_upsert('NEW', '+')} END"
        )
        op.execute(
            "CREATE TRIGGER recipient_rollup_upd AFTER UPDATE OF status, carrier, carrier_code, detail, content_id "
            "ON recipients WHEN OLD.status IS NOT NEW.status OR OLD.carrier IS NOT NEW.carrier OR "
            "OLD.carrier_code IS NOT NEW.carrier_code OR OLD.detail IS NOT NEW.detail OR "
            f"OLD.content_id IS NOT NEW.content_id BEGIN {sqlite_upsert('OLD', '-')} {sqlite_upsert('NEW', '+')} END"
        )
        op.execute(
            f"CREATE TRIGGER recipient_rollup_del AFTER DELETE ON recipients BEGIN {sqlite_upsert('OLD', '-')} END"
        )
        cost = f"CASE WHEN x.status IN {HANDED} THEN coalesce(c.cost_micros / max(c.recipients, 1), 0) ELSE 0 END"
        backfill = (
            f"INSERT INTO recipient_rollup ({KEY}, n, cost_micros) SELECT x.batch_id, x.status, x.carrier, "
            f"{code('x')}, count(*), sum({cost}) FROM recipients x LEFT JOIN batch_contents c "
            "ON c.batch_id = x.batch_id AND c.content_id = x.content_id GROUP BY 1, 2, 3, 4"
        )
    op.execute(backfill.rstrip(";"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for t in ("ins", "upd", "del"):
            op.execute(f"DROP TRIGGER recipient_rollup_{t} ON recipients")
        op.execute("DROP FUNCTION recipient_rollup_apply()")
    else:
        for t in ("ins", "upd", "del"):
            op.execute(f"DROP TRIGGER recipient_rollup_{t}")
    op.drop_table("recipient_rollup")
