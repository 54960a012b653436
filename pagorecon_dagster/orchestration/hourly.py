"""The hourly sync (docs/operations.md, The hourly sync): every hour of the Lima day the
`hourly_sync` schedule starts the `hourly_pull` job, which lands in landing/
- today's CIPs of every store with PagoEfectivo credentials (`/v1/cips/search`, pagoefectivo/pull.py),
- new orders of every store whose `source` is a shop's API (Shopify, WooCommerce: `api_pulls`),
- the SBS rates from the BCRP statistics API when `rates.bcrp` is on (rates/bcrp.py; each fetch,
  failed or not, is recorded in `fx_fetches`, which FX_RATE_MISSING reads);
then, once it succeeded, the `hourly_reconcile` sensor requests one run of the main job over
today for every store, reaching back to the earliest day whose items are still provisional (at
most `schedule.lookback_days` before today), so a statement that arrived restates them as final.
The daily schedule and its lookback are unchanged; the schedule only requests runs and the
sensor only reads the warehouse: the services are called in the run."""


import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.jobs import main_job
from pagorecon_dagster.orchestration import landing
from pagorecon_dagster.orchestration.schedules import TRIGGER_TAG
from pagorecon_dagster.pagoefectivo.client import PagoEfectivoError
from pagorecon_dagster.pagoefectivo.credentials import MissingCredentials
from pagorecon_dagster.pagoefectivo.pull import pull_cips
from pagorecon_dagster.partitions import range_tags
from pagorecon_dagster.rates.bcrp import BcrpClient, BcrpError, land_rates
from pagorecon_dagster.resources import BcrpApi, PagoEfectivoApi, ShopifyApi, Warehouse, WooCommerceApi
from pagorecon_dagster.stores import shopify as shopify_orders
from pagorecon_dagster.stores import woocommerce as woocommerce_orders
from pagorecon_dagster.warehouse.duckdb import atomically, table_type

HOURLY_JOB = "hourly_pull"
DAY_TAG = "pagorecon/day"   # the Lima day a sync pulled, read by the reconcile that follows it

# A store's orders pulled from its shop's API, by the store's `source` (stores/): called with the
# settings and the store id; it lands new or changed orders under landing/orders/<store_id>/ and
# raises on failure (the other stores are pulled all the same).
StorePull = Callable[[Settings, str], Any]


def api_pulls(shopify: ShopifyApi, woocommerce: WooCommerceApi) -> dict[str, StorePull]:
    """Each API order source's pull, with the resource that holds its credentials."""
    return {
        shopify_orders.SOURCE: lambda settings, store_id: shopify_orders.pull_store_orders(settings, store_id, shopify),
        woocommerce_orders.SOURCE: lambda settings, store_id: woocommerce_orders.pull_woocommerce_orders(settings, store_id, woocommerce),
    }


@dataclass
class SyncResult:
    landed: list[str] = field(default_factory=list)     # new landing files, relative to landing/
    unchanged: list[str] = field(default_factory=list)  # pulls that found nothing new
    skipped: list[str] = field(default_factory=list)    # stores with no PagoEfectivo credentials
    failures: list[str] = field(default_factory=list)


def lima_today() -> dt.date:
    return dt.datetime.now(ZoneInfo(LIMA_TZ)).date()


def sync(settings: Settings, day: dt.date, *, pagoefectivo: PagoEfectivoApi, bcrp: BcrpClient,
         warehouse: Warehouse, now: dt.datetime, pulls: Mapping[str, StorePull]) -> SyncResult:
    """Pull `day` for every store and, when configured, the rates; one failure never stops the rest."""
    result = SyncResult()
    for store in settings.stores:
        try:
            pulled = pull_cips(settings, store.id, day, day, api=pagoefectivo)
            where = pulled.path.relative_to(settings.landing).as_posix()
            (result.landed if pulled.written else result.unchanged).append(where)
        except MissingCredentials:
            result.skipped.append(store.id)   # its statements arrive as files
        except PagoEfectivoError as exc:
            result.failures.append(str(exc))
        pull = pulls.get(store.source)
        if pull is not None:
            try:
                pull(settings, store.id)
            except Exception as exc:  # noqa: BLE001  (a store's API failing must not stop the others)
                result.failures.append(f"store {store.id!r}: orders pull failed: {type(exc).__name__}: {exc}")
    if settings.rates.bcrp:
        fetch_rates(settings, day, bcrp, warehouse, now=now, result=result)
    return result


def fetch_rates(settings: Settings, day: dt.date, client: BcrpClient, warehouse: Warehouse, *,
                now: dt.datetime, result: SyncResult) -> None:
    """Today's and the last `rates.lookback_days` days' rates into landing/fx/, the fetch recorded in
    `fx_fetches`. A failed fetch is recorded, not raised: FX_RATE_MISSING tells a person."""
    start = max(day - dt.timedelta(days=settings.rates.lookback_days), settings.start_date)
    status, rates, file, error = "ok", 0, None, None
    try:
        fetched = client.fetch(start, day)
        path, written = land_rates(settings, fetched)
        rates = len(fetched.rates)
        if path is not None:
            file = path.relative_to(settings.landing).as_posix()
            (result.landed if written else result.unchanged).append(file)
    except BcrpError as exc:
        status, error = "failed", str(exc)
    with warehouse.warehouse() as con:
        atomically(con, lambda con: con.execute("INSERT INTO fx_fetches VALUES (?, ?, ?, ?, ?, ?, ?)",
                                                [now, start, day, status, rates, file, error]))


class HourlyConfig(dg.Config):
    day: str = ""   # the Lima day to pull, YYYY-MM-DD; empty: today


@dg.op(description="Land today's CIPs (/v1/cips/search), API stores' new orders and, when configured, the SBS rates.")
def pull_into_landing(context: dg.OpExecutionContext, config: HourlyConfig, pagorecon: Warehouse,
                pagoefectivo: PagoEfectivoApi, bcrp: BcrpApi, shopify: ShopifyApi, woocommerce: WooCommerceApi) -> None:
    settings = pagorecon.settings()
    day = dt.date.fromisoformat(config.day) if config.day else lima_today()
    result = sync(settings, day, pagoefectivo=pagoefectivo, bcrp=bcrp.client(), warehouse=pagorecon,
                  now=dt.datetime.now(dt.timezone.utc), pulls=api_pulls(shopify, woocommerce))
    for name in result.landed:
        context.log.info(f"landing/{name}: new")
    if result.skipped:
        context.log.info(f"no PagoEfectivo credentials, not pulled: {', '.join(result.skipped)}")
    if result.failures:
        raise dg.Failure(description=f"{len(result.failures)} pull(s) failed on {day}: " + "; ".join(result.failures),
                         metadata={"landed": result.landed, "failures": result.failures})


def hourly_job() -> dg.JobDefinition:
    @dg.job(name=HOURLY_JOB, description="The hourly sync's pulls into landing/; the reconciliation of today follows it.")
    def hourly_pull_job():
        pull_into_landing()

    return hourly_pull_job


def hourly_schedule(settings: Settings, job: dg.JobDefinition) -> dg.ScheduleDefinition:
    config = settings.schedule

    @dg.schedule(
        name="hourly_sync",
        cron_schedule=f"{config.hourly_minute} * * * *",
        execution_timezone=LIMA_TZ,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING if config.hourly else dg.DefaultScheduleStatus.STOPPED,
        description=f"Every hour at :{config.hourly_minute:02d} Lima: pull today's CIPs, API orders and rates; "
        "today is reconciled after it (`schedule.hourly` in pagorecon.yaml turns it on).",
    )
    def hourly_sync(context: dg.ScheduleEvaluationContext):
        at = context.scheduled_execution_time.astimezone(ZoneInfo(LIMA_TZ))
        if at.date() < settings.start_date:
            return dg.SkipReason(f"{at.date()} is before start_date {settings.start_date}")
        return dg.RunRequest(
            run_key=f"hourly:{at.isoformat(timespec='minutes')}",
            run_config={"ops": {"pull_into_landing": {"config": {"day": at.date().isoformat()}}}},
            tags={TRIGGER_TAG: "hourly_sync", DAY_TAG: at.date().isoformat()},
        )

    return hourly_sync


def reconcile_window(settings: Settings, day: dt.date) -> tuple[dt.date, dt.date] | None:
    """`day`, reaching back to its earliest still-provisional day within the lookback; None before start_date.
    A warehouse not created yet gives `day` alone."""
    if day < settings.start_date:
        return None
    earliest = max(day - dt.timedelta(days=settings.schedule.lookback_days), settings.start_date)
    con = landing.open_warehouse(settings)
    if con is None:
        return day, day
    try:
        if table_type(con, "recon_item_rows") is None:
            return day, day
        (first,) = con.execute(
            "SELECT min(business_date) FROM recon_item_rows WHERE provisional AND business_date BETWEEN ? AND ?",
            [earliest, day],
        ).fetchone()
    finally:
        con.close()
    return (first or day), day


def hourly_reconcile_sensor(settings: Settings, job: dg.JobDefinition) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name="hourly_reconcile",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[job],
        request_job=main_job(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="After each successful hourly pull: reconcile its day for every store, back to the earliest "
        "day still provisional within schedule.lookback_days.",
    )
    def hourly_reconcile(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        day = dt.date.fromisoformat(run.tags[DAY_TAG]) if DAY_TAG in run.tags else lima_today()
        window = reconcile_window(settings, day)
        if window is None:
            return dg.SkipReason(f"{day} is before start_date {settings.start_date}")
        return reconcile_request(settings, run.run_id, *window)

    return hourly_reconcile


def reconcile_request(settings: Settings, pull_run_id: str, start: dt.date, end: dt.date) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"hourly:{pull_run_id}",
        tags={**range_tags(settings.store_ids, start, end), TRIGGER_TAG: "hourly_sync"},
    )
