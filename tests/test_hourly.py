"""The hourly sync: its schedule from `pagorecon.yaml` (Lima time), the pull of today's CIPs from
the PagoEfectivo sandbox, the reconcile run the sensor requests after it, today's items marked
provisional (in the warehouse and the daily report) and made final by the next day's statements."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from conftest import DEFAULT_STORES

from pagorecon_dagster.config import ConfigError, load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.jobs import MAIN_JOB
from pagorecon_dagster.orchestration.hourly import DAY_TAG, HOURLY_JOB
from pagorecon_dagster.pagoefectivo.sandbox import PagoEfectivoSandbox, SandboxService
from pagorecon_dagster.partitions import range_tags
from pagorecon_dagster.resources import PAGOEFECTIVO, SHOPIFY, PagoEfectivoApi, ShopifyApi
from pagorecon_dagster.sandbox.shopify_api import SandboxShop, ShopifySandbox

D = dt.date.fromisoformat
SERVICE_ID, ACCESS_KEY, SECRET = "1339", "YTQ3Mjk1YjllYjlkYTA0", "s3cr3t+Key/42"


def test_the_hourly_schedule_takes_its_minute_and_switch_from_config_in_lima_time(home):
    defs = build_definitions(load_settings(home.path))
    schedule = defs.resolve_schedule_def("hourly_sync")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 * * * *", "America/Lima")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED   # off unless pagorecon.yaml turns it on
    assert defs.resolve_schedule_def("daily_reconcile").cron_schedule == "0 6 * * *"   # the daily run stays

    home.config(schedule={"hourly": True, "hourly_minute": 40, "hour": 7})
    defs = build_definitions(load_settings(home.path))
    schedule = defs.resolve_schedule_def("hourly_sync")
    assert (schedule.cron_schedule, schedule.default_status) == ("40 * * * *", dg.DefaultScheduleStatus.RUNNING)
    assert defs.resolve_schedule_def("daily_reconcile").cron_schedule == "0 7 * * *"
    # 00:40 Lima is 05:40 UTC: the day pulled is the Lima day
    at = dt.datetime(2026, 7, 15, 0, 40, tzinfo=ZoneInfo("America/Lima"))
    with dg.build_schedule_context(scheduled_execution_time=at) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.tags[DAY_TAG] == "2026-07-15"
    assert request.run_config == {"ops": {"pull_into_landing": {"config": {"day": "2026-07-15"}}}}

    home.config(schedule={"hourly_minute": 60})
    with pytest.raises(ConfigError, match=r"`schedule.hourly_minute` must be a whole number 0-59 \(minute of the hour\), got 60"):
        load_settings(home.path)
    home.config(schedule={"hourly": "on"})
    with pytest.raises(ConfigError, match=r"`schedule.hourly` must be true or false, got 'on'"):
        load_settings(home.path)


def cip(number, ref, amount, created, paid=None, status=22):
    return {"cip": number, "transactionCode": ref, "amount": amount, "currency": "PEN", "status": status,
            "dateCreation": created, "dateExpiry": "2026-07-20T10:00:00-05:00", "datePayment": paid}


@pytest.fixture
def pagoefectivo():
    service = SandboxService(SERVICE_ID, ACCESS_KEY, SECRET, cips=[
        cip("90000001", "A1", "100.50", "2026-07-14T10:00:00-05:00", "2026-07-14T12:15:00-05:00", status=23),
        cip("90000002", "A2", "20.00", "2026-07-14T11:00:00-05:00"),
    ])
    with PagoEfectivoSandbox([service]) as sandbox:
        yield sandbox, service


def hour(home, sandbox, instance, day):
    """One hourly sync as the daemon runs it: the pull job, then the run its sensor requests."""
    settings = load_settings(home.path)
    credentials = {f"PAGORECON_PE_SHOP_{name}": value for name, value in
                   (("ACCESS_KEY", ACCESS_KEY), ("SECRET_KEY", SECRET), ("SERVICE_ID", SERVICE_ID), ("API_URL", sandbox.url))}
    defs = build_definitions(settings, resources={PAGOEFECTIVO: PagoEfectivoApi(variables=credentials)})
    pulled = defs.resolve_job_def(HOURLY_JOB).execute_in_process(
        instance=instance, run_config={"ops": {"pull_into_landing": {"config": {"day": day}}}}, tags={DAY_TAG: day})
    assert pulled.success
    sensor = defs.resolve_sensor_def("hourly_reconcile")
    context = dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_instance=instance,
                                                 dagster_run=pulled.dagster_run, dagster_event=pulled.get_run_success_event())
    request = sensor(context)
    assert defs.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance, tags=request.tags).success
    return request


def provisional(home):
    return home.query("SELECT business_date, order_id, status, provisional FROM recon_items WHERE store_id = 'shop' ORDER BY ALL")


def test_the_hourly_run_marks_todays_items_provisional_and_the_next_statements_make_them_final(home, pagoefectivo):
    sandbox, service = pagoefectivo
    home.orders("A1,2026-07-14 09:50:00,paid,PEN,100.50,0.00,PagoEfectivo,,,\nA2,2026-07-14 10:55:00,pending,PEN,20.00,0.00,PagoEfectivo,,,\n")
    instance = dg.DagsterInstance.ephemeral()
    settings = load_settings(home.path)

    request = hour(home, sandbox, instance, "2026-07-14")
    assert request.tags == {**range_tags(settings.store_ids, D("2026-07-14"), D("2026-07-14")), "pagorecon/trigger": "hourly_sync"}
    (pulled,) = (home.path / "landing" / "statements" / "shop").iterdir()
    assert pulled.name.startswith("pe_api_2026-07-14_2026-07-14_")
    # the statements reach 2026-07-14 only: the day may still change
    assert provisional(home) == [
        {"business_date": D("2026-07-14"), "order_id": "A1", "status": "MATCHED", "provisional": True},
        {"business_date": D("2026-07-14"), "order_id": "A2", "status": "AWAITING_PAYMENT", "provisional": True},
    ]
    report = home.path / "reports" / "daily" / "2026-07" / "shop_2026-07-14.html"
    assert "PROVISIONAL" in report.read_text(encoding="utf-8")
    assert "2 item(s) may still change" in report.read_text(encoding="utf-8")

    # next day: A2 is paid late at night and a new CIP is created; the pull of the 15th reaches past
    # the 14th, and the run reaches back to the 14th, still provisional: restated, now final
    service.cips[1] = cip("90000002", "A2", "20.00", "2026-07-14T11:00:00-05:00", "2026-07-15T00:30:00-05:00", status=23)
    service.cips.append(cip("90000003", "A3", "5.00", "2026-07-15T08:00:00-05:00"))
    request = hour(home, sandbox, instance, "2026-07-15")
    assert request.tags == {**range_tags(settings.store_ids, D("2026-07-14"), D("2026-07-15")), "pagorecon/trigger": "hourly_sync"}
    assert provisional(home) == [
        {"business_date": D("2026-07-14"), "order_id": "A1", "status": "MATCHED", "provisional": False},
        {"business_date": D("2026-07-14"), "order_id": "A2", "status": "MATCHED", "provisional": False},
    ]
    assert "PROVISIONAL" not in report.read_text(encoding="utf-8")

    # nothing provisional left: the next hour reconciles its own day only
    request = hour(home, sandbox, instance, "2026-07-15")
    assert request.tags == {**range_tags(settings.store_ids, D("2026-07-15"), D("2026-07-15")), "pagorecon/trigger": "hourly_sync"}


def test_a_store_api_pull_is_called_for_its_source_and_its_failure_fails_the_pull_run_only_after_the_rest(home, pagoefectivo):
    sandbox, _ = pagoefectivo
    # `shopi` pulls its orders from the Shopify Admin API, which refuses the token it is given.
    stores = [DEFAULT_STORES[0], {**DEFAULT_STORES[1], "source": "shopify_api", "shop_domain": "shopi.myshopify.com"}]
    home.config(stores=stores)
    settings = load_settings(home.path)
    credentials = {f"PAGORECON_PE_SHOP_{name}": value for name, value in
                   (("ACCESS_KEY", ACCESS_KEY), ("SECRET_KEY", SECRET), ("SERVICE_ID", SERVICE_ID), ("API_URL", sandbox.url))}
    with ShopifySandbox([SandboxShop("shopi.myshopify.com", "shpat_right")]) as shop:
        shopify = ShopifyApi(tokens={"PAGORECON_SHOPIFY_TOKEN_SHOPI": "shpat_revoked"}, api_url=shop.url)
        defs = build_definitions(settings, resources={PAGOEFECTIVO: PagoEfectivoApi(variables=credentials), SHOPIFY: shopify})
        result = defs.resolve_job_def(HOURLY_JOB).execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), run_config={"ops": {"pull_into_landing": {"config": {"day": "2026-07-14"}}}},
            raise_on_error=False)
        asked = len(shop.requests)
    assert asked >= 1   # the pull reached the shop's API
    failure = next(e for e in result.all_events if e.is_failure).event_specific_data.error.message
    assert "shopi" in failure and "shpat_revoked" not in failure
    assert not result.success
    assert len(list((home.path / "landing" / "statements" / "shop").iterdir())) == 1   # the others still landed

