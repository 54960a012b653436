#!/usr/bin/env python
"""pagorecon benchmarks: reconciliation and statement ingest at volume.

    python benchmarks/bench.py recon  --orders 10000000         # N orders vs N payment rows
    python benchmarks/bench.py ingest --rows 1000000            # N-row statements CSV (and 2N)
    python benchmarks/bench.py all                              # recon 1M + ingest 1M/2M
    python benchmarks/bench.py run                              # `pagorecon run` with nothing new, demo home
    python benchmarks/bench.py backfill                         # a year of 10 stores in one `pagorecon run`

Every step runs in a fresh subprocess, so its peak RSS (ru_maxrss of that child, from wait4) is
its own. Only the product calls are timed; building the data is setup. See benchmarks/README.md.
"""

from __future__ import annotations

import time as _time

STARTED = _time.perf_counter()  # a child's process start, near enough: the `run` steps time whole processes

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

STORES = ("lima_norte", "lima_sur", "arequipa", "cusco")
FIRST_DAY = dt.date(2026, 1, 5)   # orders span FIRST_DAY .. FIRST_DAY + DAYS - 1 (Lima dates)
DAYS = 60


def settings_data() -> dict:
    return {
        "stores": [
            {"id": s, "name": s.replace("_", " ").title(), "order_format": "canonical",
             "reference_field": "order_id", "auto_refund_limit": "150.00"}
            for s in STORES
        ],
        "start_date": "2026-01-01",
        "fx_tolerance_pct": 1.0,
        "missing_payment_grace_business_days": 2,
        "extra_non_working_days": [],
        "alerts": {"refund_rate_pct": 5.0},
    }


# --- children: one step each ------------------------------------------------------------------


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _tune(con, opts: dict) -> None:
    """Benchmark-connection knobs only (never the product's defaults)."""
    if opts.get("threads"):
        con.execute(f"SET threads = {int(opts['threads'])}")
    if opts.get("memory_limit"):
        con.execute(f"SET memory_limit = '{opts['memory_limit']}'")
    if opts.get("no_insertion_order"):
        con.execute("SET preserve_insertion_order = false")
    if opts.get("temp_directory"):
        con.execute(f"SET temp_directory = '{opts['temp_directory']}'")


def _settings(home: Path):
    from pagorecon_dagster.config import load_settings

    return load_settings(home)


def _warehouse(settings):
    """What `connect` opens: the lake (`settings.lake`) or, before the move to DuckLake, the DuckDB
    file (`settings.warehouse_path`). The bench runs on both, so the two can be compared."""
    return getattr(settings, "lake", None) or settings.warehouse_path


def _on_file(warehouse) -> bool:
    return isinstance(warehouse, (str, Path))


# Order i belongs to block category k = i % 1000 (per mille):
#   [0,850) + [990,1000)  matched, same currency (5% of them USD orders paid in USD)
#   [850,875) PEN order paid in USD at the SBS sell rate (within tolerance)
#   [875,880) PEN order paid in USD, 10% short (outside tolerance)
#   [880,890) underpaid            [890,900) overpaid
#   [900,915) paid twice: the second CIP is payment row i+15 (the slot of a [915,930) order)
#   [915,930) no CIP in the statements (half marked paid by the store, half pending)
#   [930,945) CIP pending (expires after 2 days)   [945,960) CIP expired
#   [960,975) cancelled order: even i paid anyway, odd i CIP expired
#   [975,985) order paid by card; even i: a PagoEfectivo CIP paid it too, odd i: orphan CIP with no order
#   [985,990) CIP paid then reversed
# Everything else (store, day, time, amounts, rates) comes from hash() of the index.
GEN_MACROS = f"""
-- high bits: hash(i, 'day') % 60 fixes hash(i, 'store') % 4, so every day held one store
CREATE OR REPLACE TEMP MACRO b_store(i) AS
    list_extract({list(STORES)!r}, CAST((hash(i, 'store') >> 40) % {len(STORES)} AS INTEGER) + 1);
CREATE OR REPLACE TEMP MACRO b_day(i) AS DATE '{FIRST_DAY.isoformat()}' + CAST(hash(i, 'day') % {DAYS} AS INTEGER);
CREATE OR REPLACE TEMP MACRO b_created(i) AS
    timezone('America/Lima', CAST(b_day(i) AS TIMESTAMP) + to_seconds(CAST(hash(i, 'tod') % 86400 AS BIGINT)));
CREATE OR REPLACE TEMP MACRO b_total(i) AS CAST(1000 + hash(i, 'amt') % 500000 AS BIGINT);
CREATE OR REPLACE TEMP MACRO b_cat(i) AS i % 1000;
CREATE OR REPLACE TEMP MACRO b_currency(i) AS
    CASE WHEN (b_cat(i) < 850 OR b_cat(i) >= 990) AND hash(i, 'cur') % 20 = 0 THEN 'USD' ELSE 'PEN' END;
CREATE OR REPLACE TEMP MACRO b_ref(i) AS CAST(100000 + i AS VARCHAR);
CREATE OR REPLACE TEMP MACRO b_sell(d) AS CAST(3.7 + (hash(d, 'fx') % 2000) / 100000.0 AS DECIMAL(12, 6));
"""

ORDERS_SQL = """
INSERT INTO order_rows
SELECT
    b_store(i) AS store_id,
    '#' || b_ref(i) AS order_id,
    b_ref(i) AS reference,
    CAST(900000000 + i AS VARCHAR) AS source_order_id,
    b_created(i) AS created_at,
    b_day(i) AS business_date,
    status, status AS store_status,
    b_currency(i) AS currency,
    b_total(i) AS total_cents,
    CASE WHEN hash(i, 'disc') % 4 = 0 THEN CAST(hash(i, 'disc') % 2000 AS BIGINT) ELSE 0 END AS discount_cents,
    CASE WHEN k BETWEEN 975 AND 984 THEN 'Visa' ELSE 'PagoEfectivo' END AS payment_method,
    NOT (k BETWEEN 975 AND 984) AS is_pagoefectivo,
    CASE WHEN k < 850 AND i % 10 = 0 THEN CAST(50000000 + i AS VARCHAR) END AS cip,
    'buyer' || i || '@example.pe' AS customer_email,
    lpad(CAST(hash(i, 'doc') % 100000000 AS VARCHAR), 8, '0') AS customer_document,
    CAST(1 + hash(i, 'items') % 3 AS BIGINT) AS line_items,
    'orders/' || b_store(i) || '/bench.csv' AS file,
    100 AS file_seq,
    i + 2 AS line
FROM (
    SELECT i, b_cat(i) AS k,
        CASE
            WHEN b_cat(i) BETWEEN 915 AND 929 THEN CASE WHEN i % 2 = 0 THEN 'paid' ELSE 'pending' END
            WHEN b_cat(i) BETWEEN 930 AND 959 OR b_cat(i) BETWEEN 985 AND 989 THEN 'pending'
            WHEN b_cat(i) BETWEEN 960 AND 974 THEN 'cancelled'
            ELSE 'paid'
        END AS status
    FROM range(?) AS t(i)
)
"""

# Payment row j belongs to order oi (j, or j-15 for a second CIP); orphans of odd j have no order.
PAYMENTS_SQL = """
INSERT INTO statement_rows
SELECT
    store_id, cip, transaction_code, reference, operation_number, status, currency, amount_cents,
    amount_cents * 3 // 100 AS commission_cents, amount_cents * 3 // 100 * 18 // 100 AS igv_cents,
    date_creation, date_expiry, date_payment,
    CAST(timezone('America/Lima', date_payment) AS DATE) AS payment_date,
    CAST(timezone('America/Lima', date_creation) AS DATE) AS creation_date,
    list_extract(['AGENCIA', 'BANCA_MOVIL', 'AGENTE'], CAST(hash(j, 'ch') % 3 AS INTEGER) + 1) AS channel,
    'DNI' AS user_document_type,
    lpad(CAST(hash(oi, 'doc') % 100000000 AS VARCHAR), 8, '0') AS user_document_number,
    'buyer' || oi || '@example.pe' AS user_email,
    'csv' AS origin,
    'statements/' || store_id || '/bench.csv' AS file,
    1 AS file_seq,
    j + 2 AS line
FROM (
    SELECT *,
        CASE WHEN status IN ('paid', 'reversed') THEN date_creation + to_seconds(CAST(60 + hash(j, 'pay') % 172800 AS BIGINT)) END AS date_payment,
        date_creation + INTERVAL 2 DAY AS date_expiry,
        CASE WHEN status IN ('paid', 'reversed') THEN CAST(700000000 + j AS VARCHAR) END AS operation_number,
        CASE WHEN j % 3 = 0 THEN '#' || reference ELSE reference END AS transaction_code
    FROM (
        SELECT *,
            b_store(oi) AS store_id,
            CAST(50000000 + j AS VARCHAR) AS cip,
            CASE WHEN k BETWEEN 975 AND 984 AND j % 2 = 1 THEN 'NOORDER' || j ELSE b_ref(oi) END AS reference,
            b_created(oi) + to_seconds(CAST(CASE WHEN k BETWEEN 915 AND 929 THEN 86400 ELSE 300 END AS BIGINT)) AS date_creation,
            CASE
                WHEN k BETWEEN 930 AND 944 THEN 'pending'
                WHEN k BETWEEN 945 AND 959 THEN 'expired'
                WHEN k BETWEEN 960 AND 974 AND j % 2 = 1 THEN 'expired'
                WHEN k BETWEEN 985 AND 989 THEN 'reversed'
                ELSE 'paid'
            END AS status,
            CASE WHEN k BETWEEN 850 AND 879 THEN 'USD' WHEN k BETWEEN 975 AND 984 THEN 'PEN' ELSE b_currency(oi) END AS currency,
            CASE
                WHEN k BETWEEN 850 AND 874 THEN CAST(round(b_total(oi) / b_sell(pay_day)) AS BIGINT)
                WHEN k BETWEEN 875 AND 879 THEN CAST(round(b_total(oi) * 0.9 / b_sell(pay_day)) AS BIGINT)
                WHEN k BETWEEN 880 AND 889 THEN greatest(1, b_total(oi) - 1 - CAST(hash(j, 'under') % 1000 AS BIGINT))
                WHEN k BETWEEN 890 AND 899 THEN b_total(oi) + 1 + CAST(hash(j, 'over') % 5000 AS BIGINT)
                WHEN k BETWEEN 975 AND 984 THEN CAST(1000 + hash(j, 'orph') % 100000 AS BIGINT)
                ELSE b_total(oi)
            END AS amount_cents
        FROM (
            SELECT j, j % 1000 AS k,
                CASE WHEN j % 1000 BETWEEN 915 AND 929 THEN j - 15 ELSE j END AS oi,
                -- Lima date of the payment, for the USD amounts (same formula as date_payment below)
                CAST(timezone('America/Lima',
                    b_created(CASE WHEN j % 1000 BETWEEN 915 AND 929 THEN j - 15 ELSE j END)
                    + to_seconds(CAST(CASE WHEN j % 1000 BETWEEN 915 AND 929 THEN 86400 ELSE 300 END + 60 + hash(j, 'pay') % 172800 AS BIGINT))
                ) AS DATE) AS pay_day
            FROM range(?) AS t(j)
        )
    )
)
"""

FX_SQL = f"""
INSERT INTO fx_rate_rows
SELECT CAST(d AS DATE), 'USD', b_sell(CAST(d AS DATE)) - 0.01, b_sell(CAST(d AS DATE)), 'fx/sbs.csv', 1000, row_number() OVER (ORDER BY d) + 1
FROM range(TIMESTAMP '{(FIRST_DAY - dt.timedelta(days=40)).isoformat()}',
           TIMESTAMP '{(FIRST_DAY + dt.timedelta(days=DAYS + 40)).isoformat()}', INTERVAL 1 DAY) AS t(d)
"""


def child_gen_warehouse(opts: dict) -> dict:
    from pagorecon_dagster.warehouse.duckdb import connect

    home, n = Path(opts["home"]), int(opts["n"])
    warehouse = _warehouse(_settings(home))
    with connect(warehouse) as con:
        _tune(con, opts)
        con.execute(GEN_MACROS)
        t0 = time.perf_counter()
        con.execute(ORDERS_SQL, [n])
        con.execute(PAYMENTS_SQL, [n])
        con.execute(FX_SQL)
        _checkpoint(con, warehouse)
        seconds = time.perf_counter() - t0
        orders, payments = con.execute("SELECT (SELECT count(*) FROM order_rows), (SELECT count(*) FROM statement_rows)").fetchone()
    return {"seconds": seconds, "rows": orders + payments, "note": f"{orders:,} order rows + {payments:,} statement rows"}


def _checkpoint(con, warehouse) -> None:
    """Write the WAL into a DuckDB file, as a product run would have left it. On a lake every
    statement has committed its Parquet files already, and CHECKPOINT would run DuckLake's
    maintenance (merging files, expiring snapshots), which no product step does after a write."""
    if _on_file(warehouse):
        con.execute("CHECKPOINT")


def child_gen_day(opts: dict) -> dict:
    """One more day of files on top of the N-order warehouse: an order export and a statement with
    N/60 new orders and CIPs each, plus every 120th existing order and CIP exported again."""
    from pagorecon_dagster.warehouse.duckdb import connect

    home, n = Path(opts["home"]), int(opts["n"])
    new = max(1, n // DAYS)
    warehouse = _warehouse(_settings(home))
    with connect(warehouse) as con:
        _tune(con, opts)
        con.execute(GEN_MACROS)
        t0 = time.perf_counter()
        orders = ORDERS_SQL.replace("FROM range(?) AS t(i)", "FROM (FROM range(?, ?) UNION ALL FROM range(0, ?, 120)) AS t(i)")
        orders = orders.replace("100 AS file_seq", "2000 AS file_seq").replace("/bench.csv'", "/day.csv'")
        payments = PAYMENTS_SQL.replace("FROM range(?) AS t(j)", "FROM (FROM range(?, ?) UNION ALL FROM range(0, ?, 120)) AS t(j)")
        payments = payments.replace("1 AS file_seq", "2001 AS file_seq").replace("/bench.csv'", "/day.csv'")
        con.execute(orders, [n, n + new, n])
        con.execute(payments, [n, n + new, n])
        _checkpoint(con, warehouse)
        seconds = time.perf_counter() - t0
        rows = con.execute("SELECT (SELECT count(*) FROM order_rows WHERE file_seq = 2000) + (SELECT count(*) FROM statement_rows WHERE file_seq = 2001)").fetchone()[0]
    return {"seconds": seconds, "rows": rows, "note": f"{rows:,} raw rows in two new files"}


def child_refresh(opts: dict) -> dict:
    """`refresh_current_state`, model by model, to report what each refresh did."""
    from pagorecon_dagster.reconciliation.models import CURRENT_STATE_MODELS, refresh_calendar, refresh_model
    from pagorecon_dagster.warehouse.duckdb import connect

    home = Path(opts["home"])
    settings = _settings(home)
    with connect(_warehouse(settings)) as con:
        _tune(con, opts)
        t0 = time.perf_counter()
        done, took = {}, {}
        for name in CURRENT_STATE_MODELS:
            start = time.perf_counter()
            done[name] = refresh_model(con, name)
            took[name] = time.perf_counter() - start
        refresh_calendar(con, settings)
        seconds = time.perf_counter() - t0
    orders, payments, counts = done["orders"], done["payments"], done["reference_counts"]
    return {"seconds": seconds, "rows": orders.rows + payments.rows,
            "note": f"orders {orders.rows:,} ({orders.mode}, {orders.written:,} written, {took['orders']:.2f} s), "
                    f"payments {payments.rows:,} ({payments.mode}, {payments.written:,} written, {took['payments']:.2f} s), "
                    f"reference_counts {counts.rows:,} ({counts.mode}, {counts.written:,} written, {took['reference_counts']:.2f} s)"}


def child_recon(opts: dict) -> dict:
    from pagorecon_dagster.reconciliation.models import Window, reconcile, summarize
    from pagorecon_dagster.warehouse.duckdb import connect

    home = Path(opts["home"])
    settings = _settings(home)
    last = FIRST_DAY + dt.timedelta(days=DAYS - 1)
    days = int(opts.get("days") or DAYS)  # a daily run: the last `days` days of `stores` stores
    window = Window(tuple(settings.store_ids[: int(opts.get("stores") or len(STORES))]), last - dt.timedelta(days=days - 1), last)
    with connect(_warehouse(settings)) as con:
        _tune(con, opts)
        t0 = time.perf_counter()
        items = reconcile(con, settings, window)
        t1 = time.perf_counter()
        summary = summarize(con, settings, window)
        t2 = time.perf_counter()
        by_status = con.execute("SELECT status, count(*) FROM recon_items GROUP BY ALL ORDER BY 2 DESC").fetchall()
    return {"seconds": t2 - t0, "rows": items,
            "note": f"reconcile {t1 - t0:.2f}s + summarize {t2 - t1:.2f}s ({summary:,} summary rows)",
            "by_status": by_status}


# The yardstick: a plain reconciliation on the same tables, machine and moment (join each order
# to its CIP by reference, MATCHED or AMOUNT_MISMATCH, written with the columns of recon_items): no
# duplicates, orphans, FX, cancellations, expiry or evidence. Machines of one kind differ by up to
# 2x from day to day; the ratio of the two figures does not.
PLAIN_SQL = """
CREATE OR REPLACE TABLE plain_recon_items AS
SELECT o.store_id, o.business_date, o.reference, o.order_id, p.cip,
    CASE WHEN p.amount_cents = o.total_cents THEN 'MATCHED' ELSE 'AMOUNT_MISMATCH' END AS status,
    CAST(NULL AS VARCHAR) AS reason, o.currency AS order_currency, o.total_cents AS order_total_cents,
    p.currency AS paid_currency, p.amount_cents AS paid_amount_cents, p.amount_cents - o.total_cents AS difference_cents,
    coalesce(p.amount_cents > o.total_cents, false) AS refund_candidate, p.date_payment AS paid_at,
    CAST(NULL AS VARCHAR) AS evidence, 0 AS refunded_cents
FROM orders AS o
LEFT JOIN payments AS p ON p.store_id = o.store_id AND p.reference = o.reference
WHERE o.is_pagoefectivo
"""


def _scratch_yardstick(opts: dict, sql: str, tables: tuple[str, ...], note: str) -> dict:
    """Time `sql`, which writes the scratch `tables`; count their rows, then drop them."""
    from pagorecon_dagster.warehouse.duckdb import connect

    with connect(_warehouse(_settings(Path(opts["home"])))) as con:
        _tune(con, opts)
        t0 = time.perf_counter()
        con.execute(sql)
        seconds = time.perf_counter() - t0
        rows = sum(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables)
        for table in tables:
            con.execute(f"DROP TABLE {table}")
    return {"seconds": seconds, "rows": rows, "note": f"yardstick: {note}, written (not the product)"}


def child_plain(opts: dict) -> dict:
    return _scratch_yardstick(opts, PLAIN_SQL, ("plain_recon_items",), "a plain join of orders and CIPs")


# The refresh yardstick: the latest row per key of the same raw rows, written (orders by store and
# order id, CIPs by store and CIP, later files and lines first): no sorting for the readers, no
# redelivery ranking, no reference counts, no coverage or calendar.
REFRESH_PLAIN_SQL = """
CREATE OR REPLACE TABLE plain_orders AS
SELECT * FROM order_rows
QUALIFY row_number() OVER (PARTITION BY store_id, order_id ORDER BY file_seq DESC, line DESC) = 1;
CREATE OR REPLACE TABLE plain_payments AS
SELECT * FROM statement_rows
QUALIFY row_number() OVER (PARTITION BY store_id, cip ORDER BY file_seq DESC, line DESC) = 1;
"""


def child_refresh_plain(opts: dict) -> dict:
    return _scratch_yardstick(opts, REFRESH_PLAIN_SQL, ("plain_orders", "plain_payments"),
                              "the latest raw row per order and per CIP")


def child_explain(opts: dict) -> dict:
    """EXPLAIN ANALYZE of the recon_item_rows model SELECT (no write), for finding the hot operators."""
    from pagorecon_dagster.reconciliation.models import Window
    from pagorecon_dagster.warehouse.duckdb import connect, model_sql, set_variables

    home = Path(opts["home"])
    settings = _settings(home)
    window = Window(tuple(settings.store_ids), FIRST_DAY, FIRST_DAY + dt.timedelta(days=DAYS - 1))
    with connect(_warehouse(settings)) as con:
        _tune(con, opts)
        set_variables(con, window.variables(settings))
        t0 = time.perf_counter()
        plan = con.execute(f"EXPLAIN ANALYZE {model_sql('recon_item_rows')}").fetchall()
        seconds = time.perf_counter() - t0
    out = Path(opts["home"]) / "explain_recon_item_rows.txt"
    out.write_text("\n".join(row[1] for row in plan), encoding="utf-8")
    return {"seconds": seconds, "rows": 0, "note": f"plan written to {out}"}


def child_gen_csv(opts: dict) -> dict:
    """A PagoEfectivo statements CSV written by DuckDB: ISO timestamps with -05:00, a status mix,
    and ~0.5% rows the schema must quarantine (`1,234.50` amounts, `paidd`, impossible dates)."""
    import duckdb

    home, n = Path(opts["home"]), int(opts["n"])
    path = home / "landing" / "statements" / STORES[0] / "big.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    _tune(con, opts)
    con.execute(GEN_MACROS)
    t0 = time.perf_counter()
    con.execute(
        f"""
        COPY (
            SELECT
                CAST(60000000 + j AS VARCHAR) AS cip,
                CASE WHEN j % 3 = 0 THEN '#' ELSE '' END || b_ref(j) AS transaction_code,
                CASE WHEN status IN ('paid', '593') THEN CAST(800000000 + j AS VARCHAR) END AS operation_number,
                status, currency,
                CASE WHEN j % 400 = 7 THEN '1,' || printf('%03d.%02d', (amount // 100) % 1000, amount % 100)
                     ELSE printf('%d.%02d', amount // 100, amount % 100) END AS amount,
                printf('%d.%02d', amount * 3 // 10000, amount * 3 // 100 % 100) AS commission,
                printf('%d.%02d', amount * 54 // 1000000, amount * 54 // 10000 % 100) AS igv,
                strftime(created, '%Y-%m-%dT%H:%M:%S') || '-05:00' AS date_creation,
                strftime(created + INTERVAL 2 DAY, '%Y-%m-%dT%H:%M:%S') || '-05:00' AS date_expiry,
                CASE WHEN j % 2000 = 999 THEN '2026-02-30T10:00:00-05:00'
                     WHEN status IN ('paid', '593') THEN strftime(created + to_seconds(CAST(60 + hash(j, 'pay') % 172800 AS BIGINT)), '%Y-%m-%dT%H:%M:%S') || '-05:00'
                END AS date_payment,
                list_extract(['AGENCIA', 'BANCA_MOVIL', 'AGENTE'], CAST(hash(j, 'ch') % 3 AS INTEGER) + 1) AS channel,
                'DNI' AS user_document_type,
                lpad(CAST(hash(j, 'doc') % 100000000 AS VARCHAR), 8, '0') AS user_document_number,
                'buyer' || j || '@example.pe' AS user_email
            FROM (
                SELECT j,
                    CAST(b_day(j) AS TIMESTAMP) + to_seconds(CAST(hash(j, 'tod') % 86400 AS BIGINT)) AS created,
                    b_total(j) AS amount,
                    CASE WHEN hash(j, 'cur') % 20 = 0 THEN 'USD' ELSE 'PEN' END AS currency,
                    CASE
                        WHEN j % 400 = 123 THEN 'paidd'
                        WHEN hash(j, 'st') % 100 < 78 THEN 'paid'
                        WHEN hash(j, 'st') % 100 < 80 THEN '593'
                        WHEN hash(j, 'st') % 100 < 90 THEN 'pending'
                        ELSE 'expired'
                    END AS status
                FROM range(?) AS t(j)
            )
            ORDER BY j
        ) TO '{path}' (HEADER, DELIMITER ',')
        """,
        [n],
    )
    seconds = time.perf_counter() - t0
    size = path.stat().st_size
    return {"seconds": seconds, "rows": n, "note": f"{path.name}: {size / 2**20:,.0f} MiB"}


def child_ingest(opts: dict) -> dict:
    from pagorecon_dagster.ingestion.loader import ingest_source
    from pagorecon_dagster.warehouse.duckdb import connect

    home = Path(opts["home"])
    settings = _settings(home)
    with connect(_warehouse(settings)) as con:
        _tune(con, opts)
        profiler = None
        if opts.get("profile"):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        t0 = time.perf_counter()
        report = ingest_source(con, settings, "statements")
        seconds = time.perf_counter() - t0
        if profiler:
            import io
            import pstats

            profiler.disable()
            profiler.dump_stats(str(home / "ingest.prof"))
            buf = io.StringIO()
            pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(25)
            (home / "ingest_profile.txt").write_text(buf.getvalue(), encoding="utf-8")
        totals = report.totals()
    if totals["files_failed"]:
        raise RuntimeError(f"ingest failed: {report.failed}")
    return {"seconds": seconds, "rows": totals["rows_read"], "loaded": totals["rows_loaded"],
            "note": f"{totals['rows_read'] / seconds:,.0f} rows/s; loaded {totals['rows_loaded']:,}, "
                    f"quarantined {totals['rows_quarantined']:,}" + ("; cProfile on" if profiler else "")}


# The ingest yardstick: DuckDB alone reads the same CSV as text and writes the typed rows of
# statement_rows to a scratch table, keeping the rows that pass the same checks written as SQL
# (required, lists, money, timestamps, a paid CIP has a payment date). Plain work only: no
# quarantine, no messages, no line numbers, no file bookkeeping.
INGEST_PLAIN_SQL = """
CREATE OR REPLACE TABLE plain_statement_rows AS
WITH raw AS (
    SELECT * REPLACE (
        trim(cip) AS cip, trim(transaction_code) AS transaction_code, trim(operation_number) AS operation_number,
        lower(trim(status)) AS status, upper(trim(currency)) AS currency, trim(amount) AS amount,
        trim(commission) AS commission, trim(igv) AS igv, trim(channel) AS channel,
        trim(user_document_type) AS user_document_type, trim(user_document_number) AS user_document_number,
        trim(user_email) AS user_email),
        try_strptime(trim(date_creation), '%Y-%m-%dT%H:%M:%S%z') AS ts_creation,
        try_strptime(trim(date_expiry), '%Y-%m-%dT%H:%M:%S%z') AS ts_expiry,
        try_strptime(trim(date_payment), '%Y-%m-%dT%H:%M:%S%z') AS ts_payment,
        CASE lower(trim(status)) WHEN 'paid' THEN 'paid' WHEN '23' THEN 'paid' WHEN '593' THEN 'paid'
            WHEN 'pending' THEN 'pending' WHEN '22' THEN 'pending' WHEN 'expired' THEN 'expired' WHEN '21' THEN 'expired'
            WHEN '595' THEN 'expired' WHEN 'deleted' THEN 'deleted' WHEN '25' THEN 'deleted' WHEN 'reversed' THEN 'reversed'
            WHEN '592' THEN 'reversed' END AS status_code
    FROM read_csv(?, all_varchar = true, header = true)
)
SELECT 'store' AS store_id, cip, nullif(transaction_code, '') AS transaction_code,
    nullif(upper(regexp_replace(transaction_code, '^#\\s*', '')), '') AS reference,
    nullif(operation_number, '') AS operation_number, status_code AS status, currency,
    CAST(CAST(amount AS DECIMAL(18, 2)) * 100 AS BIGINT) AS amount_cents,
    CAST(CAST(nullif(commission, '') AS DECIMAL(18, 2)) * 100 AS BIGINT) AS commission_cents,
    CAST(CAST(nullif(igv, '') AS DECIMAL(18, 2)) * 100 AS BIGINT) AS igv_cents,
    ts_creation AS date_creation, ts_expiry AS date_expiry, ts_payment AS date_payment,
    CAST(timezone('America/Lima', ts_payment) AS DATE) AS payment_date,
    CAST(timezone('America/Lima', ts_creation) AS DATE) AS creation_date,
    nullif(channel, '') AS channel, nullif(user_document_type, '') AS user_document_type,
    nullif(user_document_number, '') AS user_document_number, nullif(user_email, '') AS user_email,
    'csv' AS origin, 'statements/big.csv' AS file, 1 AS file_seq
FROM raw
WHERE regexp_full_match(coalesce(cip, ''), '[0-9A-Za-z-]{1,40}')
  AND status_code IS NOT NULL
  AND currency IN ('PEN', 'USD')
  AND regexp_full_match(coalesce(amount, ''), '\\d{1,15}(\\.\\d{1,2})?')
  AND (coalesce(commission, '') = '' OR regexp_full_match(commission, '\\d{1,15}(\\.\\d{1,2})?'))
  AND (coalesce(igv, '') = '' OR regexp_full_match(igv, '\\d{1,15}(\\.\\d{1,2})?'))
  AND (coalesce(date_creation, '') = '' OR ts_creation IS NOT NULL)
  AND (coalesce(date_expiry, '') = '' OR ts_expiry IS NOT NULL)
  AND (coalesce(date_payment, '') = '' OR ts_payment IS NOT NULL)
  AND (status_code <> 'paid' OR coalesce(date_payment, '') <> '')
"""


def child_ingest_plain(opts: dict) -> dict:
    from pagorecon_dagster.warehouse.duckdb import connect

    home = Path(opts["home"])
    settings = _settings(home)
    path = settings.landing / "statements" / STORES[0] / "big.csv"
    with connect(_warehouse(settings)) as con:
        _tune(con, opts)
        t0 = time.perf_counter()
        con.execute(INGEST_PLAIN_SQL, [str(path)])
        seconds = time.perf_counter() - t0
        rows = con.execute("SELECT count(*) FROM plain_statement_rows").fetchone()[0]
        # The result check: the product's typed rows are the yardstick's, value for value.
        product = "SELECT * EXCLUDE (store_id, origin, file, file_seq, line) FROM statement_rows"
        plain = "SELECT * EXCLUDE (store_id, origin, file, file_seq) FROM plain_statement_rows"
        differ = con.execute(
            f"SELECT (SELECT count(*) FROM ({product} EXCEPT ALL {plain})), (SELECT count(*) FROM ({plain} EXCEPT ALL {product}))"
        ).fetchone()
        con.execute("DROP TABLE plain_statement_rows")
    if any(differ):
        raise RuntimeError(f"result check: {differ[0]:,} product rows not in the yardstick's, {differ[1]:,} the other way")
    return {"seconds": seconds, "rows": rows,
            "note": f"yardstick: DuckDB reads the CSV as text, checks and types in SQL, writes {rows:,} rows (not the product); "
                    "result check: the product's typed rows equal these"}


def child_demo(opts: dict) -> dict:
    """`pagorecon demo` into the home (setup of the `run` steps), then the store and day they run."""
    import contextlib
    import io

    from pagorecon_dagster.cli import main as pagorecon

    home = Path(opts["home"])
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = pagorecon(["--home", str(home), "demo"])
    seconds = time.perf_counter() - t0
    if code:
        raise RuntimeError(f"pagorecon demo exited {code}")
    from pagorecon_dagster.warehouse.duckdb import connect

    settings = _settings(home)
    store = settings.store_ids[0]
    with connect(settings.lake, read_only=True) as con:
        day, items = con.execute("SELECT max(business_date), count(*) FROM recon_items WHERE store_id = ?", [store]).fetchone()
    (home / ".bench-run.json").write_text(json.dumps({"store": store, "day": day.isoformat()}), encoding="utf-8")
    return {"seconds": seconds, "rows": items, "note": f"demo home; the run steps take {store} on {day}"}


def child_run(opts: dict) -> dict:
    """`pagorecon run --store S --start D --end D`, timed from this process's start: what a person
    waits for at the shell (imports, the Dagster instance, every run of the window, the summary)."""
    import contextlib
    import io

    from pagorecon_dagster.cli import main as pagorecon

    home = Path(opts["home"])
    what = json.loads((home / ".bench-run.json").read_text(encoding="utf-8"))
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = pagorecon(["--home", str(home), "run", "--store", what["store"], "--start", what["day"], "--end", what["day"],
                          *opts.get("extra", [])])
    seconds = time.perf_counter() - STARTED
    if code:
        raise RuntimeError(f"pagorecon run exited {code}: {out.getvalue()[-300:]}")
    started_none = out.getvalue().startswith("Nothing new since")
    if started_none != opts["started_none"]:
        raise RuntimeError(f"expected {'no' if opts['started_none'] else 'a whole'} run: {out.getvalue()[:300]}")
    how = "no run started" if started_none else "a whole run"
    return {"seconds": seconds, "rows": 1, "note": f"{what['store']} on {what['day']}, from process start; {how}"}


def child_backfill_setup(opts: dict) -> dict:
    """The demo generator's volume (12 orders a store and day) for `stores` stores over `days`
    days from 2025-01-01: landing files and pagorecon.yaml."""
    import datetime as dt

    from pagorecon_dagster.sandbox.generator import generate

    home = Path(opts["home"])
    sandbox = generate(home, stores=opts["stores"], days=opts["days"], start=dt.date(2025, 1, 1))
    files = sum(1 for p in (home / "landing").rglob("*") if p.is_file())
    (home / ".bench-backfill.json").write_text(json.dumps({"start": sandbox.start.isoformat(), "end": sandbox.end.isoformat()}),
                                               encoding="utf-8")
    return {"seconds": time.perf_counter() - STARTED, "rows": files,
            "note": f"{opts['stores']} stores x {opts['days']} days, {sandbox.start}..{sandbox.end}: landing files"}


def child_backfill(opts: dict) -> dict:
    """`pagorecon run` over the whole span (every store: one Dagster run), or over its last day
    with --force, timed from this process's start; progress goes to stderr as at a terminal."""
    import datetime as dt

    from pagorecon_dagster.cli import main as pagorecon
    from pagorecon_dagster.warehouse.duckdb import connect

    home = Path(opts["home"])
    span = json.loads((home / ".bench-backfill.json").read_text(encoding="utf-8"))
    start = span["end"] if opts["last_day"] else span["start"]
    code = pagorecon(["--home", str(home), "run", "--start", start, "--end", span["end"], *(["--force"] if opts["last_day"] else [])])
    seconds = time.perf_counter() - STARTED
    if code:
        raise RuntimeError(f"pagorecon run exited {code}")
    settings = _settings(home)
    days = (dt.date.fromisoformat(span["end"]) - dt.date.fromisoformat(start)).days + 1
    partitions = days * len(settings.store_ids)
    with connect(settings.lake, read_only=True) as con:
        items = con.execute("SELECT count(*) FROM recon_items WHERE business_date BETWEEN ? AND ?", [start, span["end"]]).fetchone()[0]
    return {"seconds": seconds, "rows": items,
            "note": f"{partitions:,} partitions, {seconds / partitions * 1000:.1f} ms each; rows = items; from process start"}


def child_run_plain(opts: dict) -> dict:
    """The yardstick: a fresh process materializes one empty asset on a local Dagster instance of
    the same kind as `pagorecon run`'s (SQLite storage in a folder)."""
    home = Path(opts["home"]) / "plain-dagster"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    @dg.asset
    def empty() -> None:
        return None

    result = dg.materialize([empty], instance=dg.DagsterInstance.get(), raise_on_error=True)
    seconds = time.perf_counter() - STARTED
    return {"seconds": seconds, "rows": int(result.success),
            "note": "yardstick: an empty Dagster run of one asset in a fresh process (not the product)"}


CHILDREN = {
    "refresh_plain": child_refresh_plain,
    "demo": child_demo,
    "run": child_run,
    "run_plain": child_run_plain,
    "backfill_setup": child_backfill_setup,
    "backfill": child_backfill,
    "gen_warehouse": child_gen_warehouse,
    "gen_day": child_gen_day,
    "plain": child_plain,
    "refresh": child_refresh,
    "recon": child_recon,
    "explain": child_explain,
    "gen_csv": child_gen_csv,
    "ingest": child_ingest,
    "ingest_plain": child_ingest_plain,
}


def child_main(step: str, opts_json: str) -> None:
    opts = json.loads(opts_json)
    try:
        result = CHILDREN[step](opts)
    except Exception as exc:
        # e.g. DuckDB OutOfMemoryException under a --memory-limit: reported in the table, not fatal.
        Path(opts["result"]).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), encoding="utf-8")
        raise
    result["vmhwm_mib"] = _peak_rss_mib()
    Path(opts["result"]).write_text(json.dumps(result, default=str), encoding="utf-8")


# --- parent: run each step in its own process, collect the table ------------------------------


class Bench:
    """Runs the steps, each as `python script _child ...`: by default this file under this
    interpreter; compare.py gives each column its checkout's bench.py and its venv's python."""

    def __init__(self, args, python: str = sys.executable, script: str = os.path.abspath(__file__),
                 env: dict | None = None):
        self.args = args
        self.python, self.script, self.env = python, script, env
        self.rows: list[dict] = []
        self.failures = 0

    def knobs(self) -> dict:
        a = self.args
        return {"threads": a.threads, "memory_limit": a.memory_limit,
                "no_insertion_order": a.no_insertion_order, "temp_directory": a.temp_directory}

    def step(self, label: str, child: str, **opts) -> dict | None:
        """Run one child; None when it failed or was killed (recorded in the table)."""
        result_path = Path(opts["home"]) / f".result-{child}.json"
        result_path.unlink(missing_ok=True)
        payload = json.dumps({**self.knobs(), **opts, "result": str(result_path)})
        print(f"-> {label} ...", flush=True)
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        proc = subprocess.Popen([self.python, self.script, "_child", child, payload], env=self.env)
        deadline = started + self.args.timeout
        status, usage = 0, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.send_signal(signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                return self._failed(label, usage, f"KILLED after {self.args.timeout:.0f}s timeout")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        result = json.loads(result_path.read_text(encoding="utf-8")) if result_path.exists() else {}
        if proc.returncode != 0 or "error" in result or not result:
            error = result.get("error", "no result").splitlines()[0][:160]
            return self._failed(label, usage, f"FAILED (exit {proc.returncode}): {error}")
        # Other work on the machine skews timings: show the 1-minute load average around the step.
        load = f"load {load_before:.1f}->{os.getloadavg()[0]:.1f}"
        row = {"step": label, "rows": result["rows"], "seconds": result["seconds"],
               "rss": usage.ru_maxrss / 1024, "note": f"{result.get('note', '')}; {load}",
               "load": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
        self.rows.append(row)
        print(f"   {result['seconds']:.2f}s, peak RSS {row['rss']:,.0f} MiB; {row['note']}", flush=True)
        if result.get("by_status"):
            print("   " + ", ".join(f"{s} {n:,}" for s, n in result["by_status"]), flush=True)
        return result

    def _failed(self, label: str, usage, note: str) -> None:
        self.failures += 1
        self.rows.append({"step": label, "rows": None, "seconds": None, "rss": usage.ru_maxrss / 1024, "note": note})
        print(f"   {note}", flush=True)
        return None

    # recon_steps and ingest_steps yield after each step, so compare.py can run the columns'
    # sequences step by step in turn; recon and ingest run one sequence through.
    def recon(self, n: int, root: Path) -> None:
        for _ in self.recon_steps(n, root):
            pass

    def ingest(self, n: int, root: Path) -> None:
        for _ in self.ingest_steps(n, root):
            pass

    def recon_steps(self, n: int, root: Path) -> Iterator[None]:
        home = root / f"recon_{n}"
        reuse = self.args.reuse and _has_warehouse(home)
        if reuse:
            print(f"-> recon {_short(n)}: reusing {home} (no generate, no refresh)", flush=True)
        else:
            _prepare_home(home)
            built = self.step(f"recon {_short(n)}: generate raw rows (setup)", "gen_warehouse", home=str(home), n=n)
            yield
            if not built:
                return
            built = self.step(f"recon {_short(n)}: refresh_current_state", "refresh", home=str(home))
            yield
            if not built:
                return
            self.step(f"recon {_short(n)}: yardstick, the latest row per key written", "refresh_plain", home=str(home))
            yield
            self.step(f"recon {_short(n)}: reconcile + summarize", "recon", home=str(home))
            yield
        if reuse or not self.args.no_rerun:
            for _ in range(self.args.repeat):
                self.step(f"recon {_short(n)}: rerun (replace window)", "recon", home=str(home))
                yield
        self.step(f"recon {_short(n)}: yardstick, a plain join written", "plain", home=str(home))
        yield
        if not reuse:
            day = self.step(f"recon {_short(n)}: one more day of files (setup)", "gen_day", home=str(home), n=n)
            yield
            if day:
                self.step(f"recon {_short(n)}: refresh_current_state after one more day", "refresh", home=str(home))
                yield
                for stores, days in ((1, 1), (len(STORES), 1), (len(STORES), 28)):
                    self.step(f"recon {_short(n)}: daily run, {stores} store(s) x {days} day(s)", "recon", home=str(home), stores=stores, days=days)
                    yield
        if self.args.explain:
            self.step(f"recon {_short(n)}: EXPLAIN ANALYZE recon_item_rows", "explain", home=str(home))
            yield
        if not self.args.keep and not self.args.reuse:
            shutil.rmtree(home, ignore_errors=True)

    def ingest_steps(self, n: int, root: Path) -> Iterator[None]:
        home = root / f"ingest_{n}"
        _prepare_home(home)
        written = self.step(f"ingest {_short(n)}: write CSV (setup)", "gen_csv", home=str(home), n=n)
        yield
        if written:
            product = self.step(f"ingest {_short(n)}: ingest_source statements", "ingest", home=str(home), profile=self.args.profile)
            yield
            plain = self.step(f"ingest {_short(n)}: yardstick, DuckDB reads, checks and writes", "ingest_plain", home=str(home))
            yield
            if product and plain:
                print(f"   ingest {_short(n)}: product / yardstick = {product['seconds'] / plain['seconds']:.2f}x", flush=True)
        if not self.args.keep:
            shutil.rmtree(home, ignore_errors=True)

    def run(self, root: Path) -> None:
        for _ in self.run_steps(root):
            pass

    def run_steps(self, root: Path) -> Iterator[None]:
        """`pagorecon run` of one store and day with nothing new, on a demo home, twice, and the
        empty Dagster run it is measured against."""
        home = root / "run_demo"
        _prepare_home(home)
        (home / "pagorecon.yaml").unlink()  # the demo writes its own
        built = self.step("run: pagorecon demo (setup)", "demo", home=str(home))
        yield
        if not built:
            return
        # The first run of the window has no record of a complete run yet (orchestration/nothing_new.py):
        # it is a whole run, as is one with --force; the one after it starts none.
        for attempt, extra, started_none in ((", first of the window", [], False), (", again", [], True),
                                             (", --force", ["--force"], False)):
            self.step(f"run: pagorecon run, 1 store x 1 day, nothing new{attempt}", "run", home=str(home),
                      extra=extra, started_none=started_none)
            yield
        self.step("run: yardstick, an empty Dagster run of one asset", "run_plain", home=str(home))
        yield
        if not self.args.keep:
            shutil.rmtree(home, ignore_errors=True)

    def backfill(self, root: Path, stores: int, days: int) -> None:
        """A span of the demo generator's volume backfilled by one `pagorecon run` from the CLI,
        then its last day again (--force), the time per partition of each."""
        home = root / "backfill"
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        if not self.step(f"backfill: write {stores} stores x {days} days (setup)", "backfill_setup", home=str(home),
                         stores=stores, days=days):
            return
        if self.step(f"backfill: pagorecon run, {stores} stores x {days} days, one run", "backfill", home=str(home), last_day=False):
            self.step(f"backfill: pagorecon run --force, {stores} stores x its last day", "backfill", home=str(home), last_day=True)
        if not self.args.keep:
            shutil.rmtree(home, ignore_errors=True)

    def table(self) -> str:
        lines = ["| step | rows | seconds | peak RSS MiB | notes |", "|---|---:|---:|---:|---|"]
        for r in self.rows:
            rows = f"{r['rows']:,}" if r["rows"] else "-"
            secs = f"{r['seconds']:.2f}" if r["seconds"] is not None else "-"
            lines.append(f"| {r['step']} | {rows} | {secs} | {r['rss']:,.0f} | {r['note']} |")
        return "\n".join(lines)


def _has_warehouse(home: Path) -> bool:
    """A warehouse was built in `home`: a DuckDB file (before the move to DuckLake) or the lake's folder."""
    return (home / "warehouse.duckdb").exists() or (home / "warehouse").is_dir()


def _prepare_home(home: Path) -> None:
    import yaml

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "pagorecon.yaml").write_text(yaml.safe_dump(settings_data(), sort_keys=False), encoding="utf-8")


def _short(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _counts(text: str) -> list[int]:
    return [int(float(x)) for x in text.replace("_", "").split(",") if x]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        child_main(argv[1], argv[2])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["recon", "ingest", "run", "backfill", "all"])
    p.add_argument("--stores", type=int, default=10, help="backfill: stores (default 10)")
    p.add_argument("--days", type=int, default=365, help="backfill: days from 2025-01-01 (default 365)")
    p.add_argument("--orders", default=None, help="recon sizes, comma separated (default 1000000)")
    p.add_argument("--rows", default=None, help="ingest sizes, comma separated (default 1000000)")
    p.add_argument("--no-2x", dest="no_2x", action="store_true", help="ingest: skip the 2x-rows memory check")
    p.add_argument("--no-rerun", action="store_true", help="recon: skip the second reconcile (delete + insert of the window)")
    p.add_argument("--explain", action="store_true", help="recon: also EXPLAIN ANALYZE the recon_item_rows model (plan saved in the home)")
    p.add_argument("--profile", action="store_true", help="ingest: run under cProfile (slower; top 25 saved in the home)")
    p.add_argument("--threads", type=int, default=None, help="DuckDB SET threads")
    p.add_argument("--memory-limit", default=None, help="DuckDB SET memory_limit, e.g. 2GB (benchmark connection only)")
    p.add_argument("--no-insertion-order", action="store_true", help="DuckDB SET preserve_insertion_order = false")
    p.add_argument("--temp-directory", default=None, help="DuckDB SET temp_directory (spill location)")
    p.add_argument("--repeat", type=int, default=1, help="recon: how many reruns to time (default 1)")
    p.add_argument("--reuse", action="store_true",
                   help="recon: with --workdir, reuse a warehouse built by an earlier --keep run (times reruns only)")
    p.add_argument("--timeout", type=float, default=600.0, help="kill a step after this many seconds")
    p.add_argument("--workdir", default=None, help="where homes are built (default: a temp dir, removed at the end)")
    p.add_argument("--keep", action="store_true", help="keep the workdir and homes")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the table's rows and the run's versions as JSON to PATH")
    args = p.parse_args(argv)

    if args.workdir:
        root = Path(args.workdir).resolve()
        root.mkdir(parents=True, exist_ok=True)
        remove_root = False
    else:
        root = Path(tempfile.mkdtemp(prefix="pagorecon-bench-"))
        remove_root = not args.keep
    bench = Bench(args)
    about = {"cpus": os.cpu_count(), "python": platform.python_version(), "duckdb": _version("duckdb"),
             "pandas": _version("pandas"), "commit": _git_head(), "knobs": bench.knobs()}
    print(f"workdir {root}; {about['cpus']} CPUs; python {about['python']}; "
          f"duckdb {about['duckdb']}; pandas {about['pandas']}; commit {about['commit']}; knobs {about['knobs']}", flush=True)
    try:
        if args.what in ("recon", "all"):
            for n in _counts(args.orders or "1000000"):
                bench.recon(n, root)
        if args.what in ("ingest", "all"):
            for n in _counts(args.rows or "1000000"):
                bench.ingest(n, root)
                if not args.no_2x:
                    bench.ingest(2 * n, root)
        if args.what in ("run", "all"):
            bench.run(root)
        if args.what == "backfill":
            bench.backfill(root, args.stores, args.days)
    finally:
        print()
        print(bench.table())
        if args.json:
            Path(args.json).write_text(json.dumps({"about": about, "rows": bench.rows}, indent=1), encoding="utf-8")
        if remove_root:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"\nkept {root}")
    if bench.failures:
        raise SystemExit(f"{bench.failures} step(s) failed or were killed")


def _git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
                              capture_output=True, text=True, timeout=10).stdout.strip() or "?"
    except Exception:
        return "?"


def _version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
