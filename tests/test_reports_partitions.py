"""Each report is partitioned by what it writes: the daily report per store x day, the all-stores
report per Lima date, the month close per store x month. The last two follow a reconciliation on
their own (the automation sensor) and `pagorecon run` runs them itself, over exactly the dates and
store x months the reconciled window falls in."""

import datetime as dt

import dagster as dg

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import MAIN_JOB, build_definitions
from pagorecon_dagster.jobs import REPORT_JOBS, following_report_runs
from pagorecon_dagster.partitions import range_tags
from pagorecon_dagster.reports.defs import SENSOR
from tests.conftest import DEFAULT_STORES

D = dt.date.fromisoformat
FOLLOWING = dg.AssetSelection.assets("all_stores_report", "month_close_report")


def seed(home):
    home.orders("A1,2026-06-30 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\nA2,2026-07-01 10:00:00,pending,PEN,20.00,0.00,PagoEfectivo,,,\n")
    home.statements(
        "90000001,A1,,paid,PEN,10.00,,,2026-06-30T10:00:00-05:00,,2026-06-30T11:00:00-05:00,BCP,,,\n"
        "90000002,A2,,paid,PEN,20.00,,,2026-07-01T10:00:00-05:00,,2026-07-01T11:00:00-05:00,BCP,,,\n"
    )


def requested(result) -> dict[str, set[str]]:
    return {name: set(result.get_requested_partitions(dg.AssetKey(name))) for name in ("all_stores_report", "month_close_report")}


def keys_of_run(definitions: dg.Definitions, job: str, tags: dict[str, str]) -> set[str]:
    partitions_def = definitions.resolve_job_def(job).partitions_def
    window = dg.PartitionKeyRange(tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"])
    return {str(k) for k in partitions_def.get_partition_keys_in_range(window)}


def test_each_report_is_partitioned_by_what_it_writes(home):
    definitions = build_definitions(load_settings(home.path))
    daily = definitions.resolve_assets_def("daily_store_report").partitions_def
    all_stores = definitions.resolve_assets_def("all_stores_report").partitions_def
    month_close = definitions.resolve_assets_def("month_close_report").partitions_def

    assert daily == definitions.resolve_assets_def("recon_items").partitions_def
    assert isinstance(all_stores, dg.DailyPartitionsDefinition) and all_stores.timezone == "America/Lima"
    assert all_stores.get_partition_keys()[:2] == ["2026-01-01", "2026-01-02"]
    assert isinstance(month_close, dg.MultiPartitionsDefinition)
    stores, months = (d.partitions_def for d in sorted(month_close.partitions_defs, key=lambda d: d.name != "store"))
    assert stores.get_partition_keys() == ["shop", "shopi"]
    assert isinstance(months, dg.MonthlyPartitionsDefinition) and months.timezone == "America/Lima"
    assert months.get_partition_keys()[:2] == ["2026-01-01", "2026-02-01"]
    # the main job keeps one partitions definition; the others have a job each
    main = {k.to_user_string() for k in definitions.resolve_job_def(MAIN_JOB).asset_layer.executable_asset_keys}
    assert "daily_store_report" in main and not {"all_stores_report", "month_close_report"} & main
    for asset, job in REPORT_JOBS.items():
        assert {k.to_user_string() for k in definitions.resolve_job_def(job).asset_layer.executable_asset_keys} == {asset}
    sensor = definitions.resolve_sensor_def(SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_a_month_starting_mid_month_is_a_whole_month(home):
    home.config(start_date="2026-01-10")
    definitions = build_definitions(load_settings(home.path))
    assert definitions.resolve_assets_def("all_stores_report").partitions_def.get_partition_keys()[0] == "2026-01-10"
    month_close = definitions.resolve_assets_def("month_close_report").partitions_def
    assert month_close.get_partition_keys()[0] == "2026-01-01|shop"


def test_a_reconciled_range_requests_exactly_its_dates_and_store_months_then_nothing(home):
    seed(home)
    definitions = build_definitions(load_settings(home.path))
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.evaluate_automation_conditions(definitions, instance, asset_selection=FOLLOWING)
        assert first.total_requested == 0  # a new sensor starts nothing

        # one store, across a month end
        tags = range_tags(["shop"], D("2026-06-29"), D("2026-07-02"))
        assert definitions.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance, tags=tags).success
        after_run = dg.evaluate_automation_conditions(definitions, instance, asset_selection=FOLLOWING, cursor=first.cursor)
        expected = {
            "all_stores_report": {"2026-06-29", "2026-06-30", "2026-07-01", "2026-07-02"},
            "month_close_report": {"2026-06-01|shop", "2026-07-01|shop"},
        }
        assert requested(after_run) == expected

        # `pagorecon run` runs the same partitions, one run per report job
        runs = following_report_runs(definitions, ["shop"], D("2026-06-29"), D("2026-07-02"))
        assert {REPORT_JOBS[asset]: keys for asset, keys in expected.items()} == {
            job: keys_of_run(definitions, job, run_tags) for job, run_tags in runs
        }
        for job, run_tags in runs:
            assert definitions.resolve_job_def(job).execute_in_process(instance=instance, tags=run_tags).success
        written = sorted(p.relative_to(home.path / "reports").as_posix() for p in (home.path / "reports").rglob("*.html"))
        assert written == [
            "all_stores/2026-06/all_stores_2026-06-29.html", "all_stores/2026-06/all_stores_2026-06-30.html",
            "all_stores/2026-07/all_stores_2026-07-01.html", "all_stores/2026-07/all_stores_2026-07-02.html",
            *(f"daily/2026-0{d[1]}/shop_2026-0{d[1]}-{d[0]}.html" for d in (("29", 6), ("30", 6), ("01", 7), ("02", 7))),
            "month_close/2026-06/shop_2026-06_close.html", "month_close/2026-07/shop_2026-07_close.html",
        ]
        # written: handled, nothing more to request
        settled = dg.evaluate_automation_conditions(definitions, instance, asset_selection=FOLLOWING, cursor=after_run.cursor)
        assert settled.total_requested == 0


def test_a_refund_intake_alone_requests_no_report(home):
    """`refunds` has no partitions: following it would rewrite every date since start_date."""
    seed(home)
    definitions = build_definitions(load_settings(home.path))
    with dg.DagsterInstance.ephemeral() as instance:
        tags = range_tags(["shop"], D("2026-06-30"), D("2026-06-30"))
        assert definitions.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance, tags=tags).success
        first = dg.evaluate_automation_conditions(definitions, instance, asset_selection=FOLLOWING)
        intake = dg.define_asset_job("intake_only", selection=dg.AssetSelection.assets("refunds"))
        job = dg.Definitions.merge(definitions, dg.Definitions(jobs=[intake])).resolve_job_def("intake_only")
        assert job.execute_in_process(instance=instance).success
        after = dg.evaluate_automation_conditions(definitions, instance, asset_selection=FOLLOWING, cursor=first.cursor)
        assert after.total_requested == 0


def test_stores_apart_in_the_config_get_their_months_and_the_dates_once(home):
    home.config(stores=[*DEFAULT_STORES, {"id": "third", "name": "Third", "order_format": "canonical", "reference_field": "order_id"}])
    definitions = build_definitions(load_settings(home.path))
    runs = [following_report_runs(definitions, block, D("2026-07-30"), D("2026-08-01")) for block in (["shop"], ["third"])]
    (dates_a, months_a), (dates_b, months_b) = runs
    assert dates_a == dates_b == ("all_stores_report_job", {
        "dagster/asset_partition_range_start": "2026-07-30", "dagster/asset_partition_range_end": "2026-08-01"})
    assert months_a[1] == {"dagster/asset_partition_range_start": "2026-07-01|shop", "dagster/asset_partition_range_end": "2026-08-01|shop"}
    assert months_b[1] == {"dagster/asset_partition_range_start": "2026-07-01|third", "dagster/asset_partition_range_end": "2026-08-01|third"}
