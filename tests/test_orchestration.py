"""The daily cycle runs itself: the landing sensor requests exactly the partitions new files touch,
the daily schedule re-runs yesterday plus a few days, a month backfill is one run, and runs that
overlap on one warehouse both succeed with the tables of a serial run.

Requested runs are executed with their exact tags over the ingestion and reconciliation assets
(the report assets of the main job are left out: they take most of a run's time here)."""

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import MAIN_JOB, build_definitions
from pagorecon_dagster.orchestration import landing
from pagorecon_dagster.orchestration.sensors import INGESTION_ASSETS
from pagorecon_dagster.partitions import range_tags

D = dt.date.fromisoformat
TRIGGER = "pagorecon/trigger"
STATEMENT_ROW = "{cip},{ref},,{status},PEN,{amount},,,{created},,{paid},BCP,DNI,12345678,ana@example.pe"


class STATEMENT:
    @staticmethod
    def format(status="paid", **fields) -> str:
        return STATEMENT_ROW.format(status=status, **fields)


def definitions(home):
    return build_definitions(load_settings(home.path))


def evaluate(home, cursor, instance):
    sensor = definitions(home).resolve_sensor_def("landing_files")
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def tick(home, cursor=None, instance=None):
    """The landing sensor over a real (ephemeral) instance, as the daemon drives it: when it asks
    for new files to be ingested, that run is executed with its exact selection and tags and the
    sensor evaluated again. Returns what asks for no ingestion: the reconcile runs (of both
    evaluations) and the last cursor, or the skip."""
    instance = instance or dg.DagsterInstance.ephemeral()
    result = evaluate(home, cursor, instance)
    if isinstance(result, dg.SkipReason):
        return result
    ingest = [r for r in result.run_requests if r.asset_selection]
    if not ingest:
        return result
    (request,) = ingest
    job = definitions(home).resolve_job_def(MAIN_JOB)
    assert job.execute_in_process(instance=instance, asset_selection=request.asset_selection, tags=request.tags).success
    again = evaluate(home, result.cursor, instance)
    if isinstance(again, dg.SkipReason):
        return again
    earlier = [r for r in result.run_requests if not r.asset_selection]
    return dg.SensorResult(run_requests=earlier + list(again.run_requests), cursor=again.cursor, skip_reason=again.skip_reason)


def ranges(result) -> list[tuple[dict, str]]:
    return [({k: v for k, v in r.tags.items() if k != TRIGGER}, r.tags[TRIGGER]) for r in result.run_requests]


RECON_GROUPS = ("ingestion", "reconciliation")


def recon_job(settings) -> dg.JobDefinition:
    job = dg.define_asset_job("recon_only", selection=dg.AssetSelection.groups(*RECON_GROUPS))
    return dg.Definitions.merge(build_definitions(settings), dg.Definitions(jobs=[job])).resolve_job_def("recon_only")


def execute(home, tags: dict, instance=None):
    """Launch a requested run the way the daemon does: its tags, unchanged."""
    result = recon_job(load_settings(home.path)).execute_in_process(instance=instance or dg.DagsterInstance.ephemeral(), tags=tags)
    assert result.success
    return result


def touched(home, relative):
    """The store x days one landing file changes, as its ingestion recorded them."""
    settings = load_settings(home.path)
    job = definitions(home).resolve_job_def(MAIN_JOB)
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), asset_selection=INGESTION_ASSETS).success
    (file,) = [f for f in landing.scan(settings) if f.relative == relative]
    con = landing.open_warehouse(settings)
    try:
        found = landing.touched_by_ingested(settings, con, [file.sha256], today=D("2026-11-01"))
    finally:
        con.close()
    return {store: sorted(days) for store, days in found[file.sha256].days.items()}


def test_new_file_requests_exactly_its_partitions_and_the_same_bytes_again_nothing(home):
    home.statements(
        "\n".join([
            STATEMENT.format(cip="90000001", ref="A1", amount="10.00", created="2026-07-14T09:00:00-05:00", paid="2026-07-14T12:00:00-05:00"),
            # paid at 20:30 Lima on the 15th: UTC says the 16th, the partition is the 15th
            STATEMENT.format(cip="90000002", ref="A2", amount="20.00", created="2026-07-15T09:00:00-05:00", paid="2026-07-15T20:30:00-05:00"),
        ]) + "\n",
        store="shopi",
    )
    first = tick(home)
    assert ranges(first) == [(range_tags(["shopi"], D("2026-07-14"), D("2026-07-15")), "landing_files")]
    (request,) = first.run_requests
    sha = landing.content_hash(home.path / "landing/statements/shopi/statement.csv")
    assert request.run_key.startswith("landing:shopi:")
    assert json.loads(first.cursor) == {"seen": [sha]}

    # the next tick, and a restart (definitions built anew, the cursor read back from the instance)
    again = tick(home, cursor=first.cursor)
    assert isinstance(again, dg.SkipReason) and "no new file" in again.skip_message
    # the same bytes dropped again under another name start nothing
    home.drop("statements/shopi/statement_copy.csv", (home.path / "landing/statements/shopi/statement.csv").read_bytes())
    copy = tick(home, cursor=first.cursor)
    assert isinstance(copy, dg.SkipReason)


def test_late_payment_requests_the_day_of_the_order_it_pays(home):
    home.orders("A1,2026-07-10 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements(STATEMENT.format(cip="90000001", ref="A1", amount="50.00", created="2026-07-10T10:01:00-05:00", paid="", status="pending") + "\n")
    first = tick(home)
    assert ranges(first) == [(range_tags(["shop"], D("2026-07-10"), D("2026-07-10")), "landing_files")]
    execute(home, first.run_requests[0].tags)
    assert [i["status"] for i in home.items()] == ["AWAITING_PAYMENT"]

    # ten days later the payment arrives: its own day and the order's day change
    home.statements(
        STATEMENT.format(cip="90000001", ref="#a1", amount="50.00", created="2026-07-10T10:01:00-05:00", paid="2026-07-20T11:00:00-05:00") + "\n",
        name="late.csv",
    )
    assert touched(home, "statements/shop/late.csv") == {"shop": [D("2026-07-10"), D("2026-07-20")]}
    late = tick(home, cursor=first.cursor)
    # two short runs, not the ten days between them
    assert ranges(late) == [
        (range_tags(["shop"], D("2026-07-10"), D("2026-07-10")), "landing_files"),
        (range_tags(["shop"], D("2026-07-20"), D("2026-07-20")), "landing_files"),
    ]
    for request in late.run_requests:
        execute(home, request.tags)
    assert [(i["status"], i["business_date"]) for i in home.items()] == [("MATCHED", D("2026-07-10"))]


def test_late_holiday_statement_requests_the_earlier_days(home):
    # Fiestas Patrias: 28 and 29 July 2026 are holidays; their statement arrives on the 31st.
    home.orders(
        """\
        X1,2026-07-23 10:00:00,paid,PEN,80.00,0.00,PagoEfectivo,,,
        A1,2026-07-27 18:00:00,pending,PEN,100.00,0.00,PagoEfectivo,,,
        B1,2026-07-28 09:00:00,pending,PEN,60.00,0.00,PagoEfectivo,,,
        """
    )
    home.statements(STATEMENT.format(cip="90000009", ref="Z9", amount="5.00", created="2026-07-24T09:00:00-05:00", paid="2026-07-24T10:00:00-05:00") + "\n")
    first = tick(home)
    # the weekend of 25-26 July is touched by nothing
    assert ranges(first) == [
        (range_tags(["shop"], D("2026-07-23"), D("2026-07-24")), "landing_files"),
        (range_tags(["shop"], D("2026-07-27"), D("2026-07-28")), "landing_files"),
    ]
    for request in first.run_requests:
        execute(home, request.tags)
    before = {i["order_id"]: (i["status"], i["reason"]) for i in home.items()}
    assert before["X1"] == ("AWAITING_PAYMENT", "WITHIN_GRACE")  # grace day 27 July, statements reach the 24th

    home.statements(
        "\n".join([
            STATEMENT.format(cip="90000001", ref="A1", amount="100.00", created="2026-07-27T18:01:00-05:00", paid="2026-07-28T22:00:00-05:00"),
            STATEMENT.format(cip="90000002", ref="B1", amount="60.00", created="2026-07-28T09:01:00-05:00", paid="2026-07-29T10:00:00-05:00"),
        ]) + "\n",
        name="holidays_2026-07-28_29.csv",
    )
    # the payment days, the order days (27 and 28), and the 23rd whose order's grace day (27th)
    # the wider coverage now reaches
    assert touched(home, "statements/shop/holidays_2026-07-28_29.csv") == {
        "shop": [D("2026-07-23"), D("2026-07-27"), D("2026-07-28"), D("2026-07-29")]
    }
    late = tick(home, cursor=first.cursor)
    assert ranges(late) == [
        (range_tags(["shop"], D("2026-07-23"), D("2026-07-23")), "landing_files"),
        (range_tags(["shop"], D("2026-07-27"), D("2026-07-29")), "landing_files"),
    ]
    for request in late.run_requests:
        execute(home, request.tags)
    after = {i["order_id"] or i["cip"]: i["status"] for i in home.items()}
    assert after == {"X1": "MISSING_PAYMENT", "A1": "MATCHED", "B1": "MATCHED", "90000009": "ORPHAN_PAYMENT"}


def test_new_order_file_requests_its_days_and_the_orphan_payment_day_it_claims(home):
    home.statements(STATEMENT.format(cip="90000001", ref="A7", amount="30.00", created="2026-07-14T09:00:00-05:00", paid="2026-07-16T12:00:00-05:00") + "\n")
    first = tick(home)
    for request in first.run_requests:
        execute(home, request.tags)
    assert [(i["status"], i["business_date"]) for i in home.items()] == [("ORPHAN_PAYMENT", D("2026-07-16"))]
    home.orders("A7,2026-07-13 21:00:00,pending,PEN,30.00,0.00,PagoEfectivo,,,\n", name="late_orders.csv")
    assert touched(home, "orders/shop/late_orders.csv") == {"shop": [D("2026-07-13"), D("2026-07-16")]}
    late = tick(home, cursor=first.cursor)
    assert ranges(late) == [
        (range_tags(["shop"], D("2026-07-13"), D("2026-07-13")), "landing_files"),
        (range_tags(["shop"], D("2026-07-16"), D("2026-07-16")), "landing_files"),
    ]
    for request in late.run_requests:
        execute(home, request.tags)
    assert [(i["status"], i["business_date"]) for i in home.items()] == [("MATCHED", D("2026-07-13"))]


def test_files_with_only_rejected_rows_request_today_for_their_store(home):
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,1.234,0.00,PagoEfectivo,,,\n")
    home.drop("statements/shopi/broken.csv", b"")
    result = tick(home)
    today = dt.datetime.now(ZoneInfo("America/Lima")).date()
    assert ranges(result) == [
        (range_tags(["shop"], today, today), "landing_files"),
        (range_tags(["shopi"], today, today), "landing_files"),
    ]


HOLD_WRITE = (
    "import sys\n"
    "from pagorecon_dagster.warehouse.duckdb import connect, home_lake\n"
    "with connect(home_lake(sys.argv[1])) as con:\n"
    "    con.execute('BEGIN')\n"
    "    con.execute('DELETE FROM ingested_files')\n"
    "    print('writing', flush=True)\n"
    "    sys.stdin.read()\n"
    "    con.execute('ROLLBACK')\n"
)


def test_a_run_writing_the_warehouse_never_makes_the_tick_skip(home):
    execute(home, range_tags(["shop"], D("2026-07-14"), D("2026-07-14")))  # the warehouse exists
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\n")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE, str(home.path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "writing"
        during = tick(home)  # reads the last commit: the other process's uncommitted delete is not seen
        assert ranges(during) == [(range_tags(["shop"], D("2026-07-14"), D("2026-07-14")), "landing_files")]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_a_new_instance_over_a_home_already_ingested_requests_no_run(home):
    """`dagster dev` opened on a home that `pagorecon run` (or the demo) already took in."""
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\n")
    home.statements(STATEMENT.format(cip="90000001", ref="A1", amount="10.00", created="2026-07-14T09:00:00-05:00", paid="2026-07-14T12:00:00-05:00") + "\n")
    home.orders("A9,2026-07-14 10:00:00,pending,PEN,1.234,0.00,PagoEfectivo,,,\n", name="rejected.csv")  # only rejects
    execute(home, range_tags(["shop"], D("2026-07-14"), D("2026-07-14")))
    fresh = tick(home, instance=dg.DagsterInstance.ephemeral())
    assert fresh.run_requests == [] and "already ingested" in fresh.skip_reason.skip_message
    hashes = sorted(f.sha256 for f in landing.scan(load_settings(home.path)))
    assert json.loads(fresh.cursor) == {"seen": hashes}
    # a file new to the warehouse is still seen, and only it
    home.orders("B1,2026-07-15 10:00:00,pending,PEN,20.00,0.00,PagoEfectivo,,,\n", name="more.csv")
    more = tick(home, cursor=fresh.cursor)
    assert ranges(more) == [(range_tags(["shop"], D("2026-07-15"), D("2026-07-15")), "landing_files")]


def test_a_late_file_another_run_took_in_still_gets_its_own_days_rerun(home):
    """Between two ticks, the daily run (window 07-20) takes in a late statement that pays an
    order of 07-14: the sensor still requests 07-14, which that run did not reconcile."""
    home.orders("A1,2026-07-14 10:00:00,paid,PEN,10.00,0.00,PagoEfectivo,,,\n")
    first = tick(home)
    execute(home, range_tags(["shop"], D("2026-07-14"), D("2026-07-14")))
    home.statements(STATEMENT.format(cip="90000001", ref="A1", amount="10.00", created="2026-07-14T09:00:00-05:00",
                                     paid="2026-07-20T12:00:00-05:00") + "\n", name="late.csv")
    execute(home, range_tags(["shop"], D("2026-07-20"), D("2026-07-20")))  # the daily run ingests it first
    later = tick(home, cursor=first.cursor)
    assert (range_tags(["shop"], D("2026-07-14"), D("2026-07-14")), "landing_files") in ranges(later)


def test_a_new_statement_leaves_orders_that_coverage_cannot_change_alone(home):
    """An order of 07-01 with no CIP waits for payment whatever the coverage: a statement of 07-20
    reruns 07-20 (and the order whose grace day it passes), not every day that still waits."""
    home.orders("W1,2026-07-01 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\n"
                "G1,2026-07-15 10:00:00,paid,PEN,10.00,0.00,PagoEfectivo,,,\n")
    home.statements(STATEMENT.format(cip="90000001", ref="X0", amount="10.00", created="2026-07-01T09:00:00-05:00",
                                     paid="2026-07-01T12:00:00-05:00") + "\n")
    first = tick(home)
    execute(home, range_tags(["shop"], D("2026-07-01"), D("2026-07-15")))
    assert {r["order_id"]: r["status"] for r in home.items()}["W1"] == "AWAITING_PAYMENT"
    home.statements(STATEMENT.format(cip="90000002", ref="X1", amount="10.00", created="2026-07-20T09:00:00-05:00",
                                     paid="2026-07-20T12:00:00-05:00") + "\n", name="later.csv")
    later = tick(home, cursor=first.cursor)
    assert ranges(later) == [
        (range_tags(["shop"], D("2026-07-15"), D("2026-07-15")), "landing_files"),  # G1 is past its grace day now
        (range_tags(["shop"], D("2026-07-20"), D("2026-07-20")), "landing_files"),
    ]


def test_new_files_far_apart_request_their_contiguous_ranges_only(home):
    home.statements(
        "\n".join([
            STATEMENT.format(cip="90000001", ref="A1", amount="10.00", created="2026-07-13T09:00:00-05:00", paid="2026-07-14T12:00:00-05:00"),
            STATEMENT.format(cip="90000002", ref="A2", amount="20.00", created="2026-09-20T09:00:00-05:00", paid="2026-09-20T12:00:00-05:00"),
        ]) + "\n",
    )
    home.orders("A3,2026-11-02 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\n", name="orders_nov.csv")
    home.orders("A4,2026-11-04 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\n", name="orders_nov2.csv")
    result = tick(home)
    assert ranges(result) == [
        (range_tags(["shop"], D("2026-07-13"), D("2026-07-14")), "landing_files"),
        (range_tags(["shop"], D("2026-09-20"), D("2026-09-20")), "landing_files"),
        (range_tags(["shop"], D("2026-11-02"), D("2026-11-02")), "landing_files"),
        (range_tags(["shop"], D("2026-11-04"), D("2026-11-04")), "landing_files"),
    ]
    assert len({r.run_key for r in result.run_requests}) == 4


def test_daily_schedule_requests_yesterday_and_the_lookback_for_every_store_in_one_run(home):
    schedule = definitions(home).resolve_schedule_def("daily_reconcile")
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == ("0 6 * * *", "America/Lima", MAIN_JOB)
    at = dt.datetime(2026, 7, 31, 6, 0, tzinfo=ZoneInfo("America/Lima"))
    (request,) = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=at)).run_requests
    assert request.run_key == "daily:2026-07-31"
    assert request.tags == {**range_tags(["shop", "shopi"], D("2026-07-27"), D("2026-07-30")), TRIGGER: "daily_reconcile",
                            "dagster/schedule_name": "daily_reconcile"}

    home.config(schedule={"hour": 7, "lookback_days": 0}, start_date="2026-07-30")
    schedule = definitions(home).resolve_schedule_def("daily_reconcile")
    assert schedule.cron_schedule == "0 7 * * *"
    (request,) = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=at)).run_requests
    assert request.tags == {**range_tags(["shop", "shopi"], D("2026-07-30"), D("2026-07-30")), TRIGGER: "daily_reconcile",
                            "dagster/schedule_name": "daily_reconcile"}
    early = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=at - dt.timedelta(days=1)))
    assert early.run_requests == [] and "before start_date" in early.skip_message


def test_a_month_for_all_stores_is_one_run(home):
    home.orders("A1,2026-07-01 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\nA2,2026-07-31 23:30:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\n")
    home.statements(STATEMENT.format(cip="90000003", ref="Z3", amount="5.00", created="2026-07-15T09:00:00-05:00",
                                     paid="2026-07-15T10:00:00-05:00") + "\n", store="shopi")
    with dg.DagsterInstance.ephemeral() as instance:
        # The tags `pagorecon run --start 2026-07-01 --end 2026-07-31` and the UI's "Launch as: single run" give.
        execute(home, range_tags(["shop", "shopi"], D("2026-07-01"), D("2026-07-31")), instance=instance)
        (run,) = instance.get_runs()
        assert run.tags["dagster/asset_partition_range_start"] == "2026-07-01|shop"
        assert run.tags["dagster/asset_partition_range_end"] == "2026-07-31|shopi"
        planned = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        assert {"recon_items", "recon_daily_summary"} <= {s.key for s in planned.steps}
    days = home.query("SELECT store_id, business_date, count(*) AS n FROM recon_items GROUP BY ALL ORDER BY ALL")
    assert days == [
        {"store_id": "shop", "business_date": D("2026-07-01"), "n": 1},
        {"store_id": "shop", "business_date": D("2026-07-31"), "n": 1},
        {"store_id": "shopi", "business_date": D("2026-07-15"), "n": 1},
    ]


RUN_SCRIPT = textwrap.dedent(
    """
    import datetime as dt, sys, time
    import dagster as dg
    from pagorecon_dagster.config import load_settings
    from pagorecon_dagster.partitions import range_tags
    from test_orchestration import recon_job
    home, store, start, end = sys.argv[1:5]
    started = time.time()
    result = recon_job(load_settings(home)).execute_in_process(instance=dg.DagsterInstance.ephemeral(),
        tags=range_tags([store], dt.date.fromisoformat(start), dt.date.fromisoformat(end)), raise_on_error=False)
    print(started, time.time())
    sys.exit(0 if result.success else 1)
    """
)


def overlap_seed(home):
    for store in ("shop", "shopi"):
        home.statements(
            "\n".join(
                STATEMENT.format(cip=f"9{n:07d}{len(store)}", ref=f"{store[:2].upper()}{n}", amount=f"{n}.00",
                                 created=f"2026-07-{10 + n % 5:02d}T09:00:00-05:00", paid=f"2026-07-{10 + n % 5:02d}T19:30:00-05:00")
                for n in range(1, 40)
            ) + "\n",
            store=store,
        )
    home.orders("\n".join(f"SH{n},2026-07-{10 + n % 5:02d} 08:00:00,paid,PEN,{n}.00,0.00,PagoEfectivo,,," for n in range(1, 45)) + "\n")


TABLES = {
    "orders": "SELECT * EXCLUDE (file_seq) FROM orders ORDER BY ALL",
    "payments": "SELECT * EXCLUDE (file_seq) FROM payments ORDER BY ALL",
    "recon_items": "SELECT * FROM recon_items ORDER BY ALL",
    "recon_daily_summary": "SELECT * FROM recon_daily_summary ORDER BY ALL",
    "ingested_files": "SELECT file, sha256, status, rows_read, rows_loaded, rows_quarantined FROM ingested_files ORDER BY ALL",
}


def test_overlapping_runs_on_one_warehouse_both_succeed_and_equal_a_serial_run(home, tmp_path):
    from conftest import Home

    serial = Home(tmp_path / "serial")
    serial.path.mkdir()
    serial.config()
    for h in (home, serial):
        overlap_seed(h)
    execute(serial, range_tags(["shop"], D("2026-07-10"), D("2026-07-14")))
    execute(serial, range_tags(["shopi"], D("2026-07-10"), D("2026-07-14")))

    logs = [tmp_path / f"run_{store}.log" for store in ("shop", "shopi")]
    runs = [
        subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, str(home.path), store, "2026-07-10", "2026-07-14"],
                         stdout=subprocess.PIPE, stderr=log.open("w"), cwd=Path(__file__).parent, text=True)
        for store, log in zip(("shop", "shopi"), logs)
    ]
    outputs = [r.communicate(timeout=300)[0] for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [log.read_text()[-3000:] for log in logs]
    # they did overlap: each run started before the other one ended (wall-clock seconds, as floats)
    spans = [tuple(map(float, out.split())) for out in outputs]
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans
    for table, sql in TABLES.items():
        assert home.query(sql) == serial.query(sql), table
    assert len(home.query(TABLES["recon_items"])) == 83
