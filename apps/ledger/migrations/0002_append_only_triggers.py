"""PostgreSQL refuses what the ledger must never do, whatever client writes to it.

- UPDATE and DELETE on every ledger table: a statement-level BEFORE trigger raises, so
  even ``UPDATE ... WHERE false`` is refused and no row is ever looked at.
- TRUNCATE likewise, except in Django's test databases (named ``test_...``), which the test
  runner empties with TRUNCATE between transactional tests.
- Postings naming a missing transaction or account: checked by the same statement-level
  trigger (ledger_posting has no row-level foreign keys; nothing can delete what they name).
- Unbalanced transactions: a statement-level AFTER INSERT trigger on ledger_posting reads
  the statement's rows from a transition table and refuses the statement unless, for every
  transaction it touches, the amounts sum to zero, there are at least two, and the lines
  are 0..n-1. With the unique (transaction, line) constraint this means all of a
  transaction's postings arrive in one statement, so no later statement can unbalance or
  extend a transaction. One check per statement keeps a 10,000-transaction batch one cheap
  aggregate instead of 30,000 row triggers.

Sealing inserts into ledger_block and ledger_blockentry and never updates a transaction.
ledger_transaction.writer_xid records which database transaction wrote each row (a column
default the model does not know), so that sealing reads only what is new.
A superuser or the tables' owner can still disable these triggers; ``ledger_verify``
detects any row changed that way. Other databases (the embedded SQLite default) rely on
the models' refusals.
"""

from django.db import migrations

TABLES = [
    "ledger_account",
    "ledger_transaction",
    "ledger_posting",
    "ledger_block",
    "ledger_blockentry",
    "ledger_verification",
]

FORWARD = [
    """
    CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' AND current_database() LIKE 'test\\_%' THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'ledger table % is append-only: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'restrict_violation',
                  HINT = 'Corrections are reversals: book a new transaction.';
    END
    $$;
    """,
    """
    CREATE FUNCTION ledger_posting_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bad record;
        missing bigint;
    BEGIN
        -- References first (ledger_posting has no row-level foreign keys, see models.py).
        SELECT n.transaction_id INTO missing
          FROM (SELECT DISTINCT transaction_id FROM ledger_new_postings) n
         WHERE NOT EXISTS (SELECT 1 FROM ledger_transaction t WHERE t.id = n.transaction_id)
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'ledger posting names transaction %, which does not exist', missing
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        SELECT n.account_id INTO missing
          FROM (SELECT DISTINCT account_id FROM ledger_new_postings) n
         WHERE NOT EXISTS (SELECT 1 FROM ledger_account a WHERE a.id = n.account_id)
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'ledger posting names account %, which does not exist', missing
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        SELECT transaction_id, SUM(amount) AS total, COUNT(*) AS n, MIN(line) AS lo, MAX(line) AS hi
          INTO bad
          FROM ledger_new_postings
         GROUP BY transaction_id
        HAVING SUM(amount) <> 0 OR COUNT(*) < 2 OR MIN(line) <> 0 OR MAX(line) <> COUNT(*) - 1
         ORDER BY transaction_id
         LIMIT 1;
        IF FOUND THEN
            IF bad.total <> 0 THEN
                RAISE EXCEPTION 'ledger transaction % is unbalanced: its postings sum to %', bad.transaction_id, bad.total
                    USING ERRCODE = 'check_violation';
            END IF;
            RAISE EXCEPTION 'ledger transaction % is incomplete: % posting(s), lines % to %; all postings of a transaction (at least two, lines 0..n-1) are inserted in one statement',
                bad.transaction_id, bad.n, bad.lo, bad.hi
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END
    $$;
    """,
    # Which database transaction wrote each ledger transaction, so that sealing can skip
    # everything sealed before (store.pending_for_seal). A column default, so COPY and plain
    # INSERTs fill it; the model does not know the column.
    """
    ALTER TABLE ledger_transaction
        ADD COLUMN writer_xid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
    CREATE INDEX ledger_tx_writer_xid_idx ON ledger_transaction (writer_xid);
    """,
    """
    CREATE TRIGGER ledger_posting_balanced
        AFTER INSERT ON ledger_posting
        REFERENCING NEW TABLE AS ledger_new_postings
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_posting_check_balanced();
    """,
]
for _table in TABLES:
    FORWARD += [
        f"CREATE TRIGGER {_table}_append_only BEFORE UPDATE OR DELETE ON {_table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();",
        f"CREATE TRIGGER {_table}_no_truncate BEFORE TRUNCATE ON {_table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();",
    ]

BACKWARD = [
    *(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}; DROP TRIGGER IF EXISTS {t}_no_truncate ON {t};" for t in TABLES),
    "DROP TRIGGER IF EXISTS ledger_posting_balanced ON ledger_posting;",
    "ALTER TABLE ledger_transaction DROP COLUMN IF EXISTS writer_xid;",
    "DROP FUNCTION IF EXISTS ledger_posting_check_balanced();",
    "DROP FUNCTION IF EXISTS ledger_refuse_change();",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
