"""Health at a glance (docs/operations.md, Health): per store, how far its statements reach, how
far it is reconciled and by which run, its open alerts and its refunds waiting or overdue.

One judgement, `StoreHealth.problems`, says what makes a store degraded; the Dagster checks
(`health_checks`, run by the `health` job on its schedule) and `pagorecon status` both read it.
Freshness is measured against today in Lima, so these checks are not part of the reconcile runs
(which judge data, the same on every rerun): they run on their own."""

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
from pydantic import Field

from pagorecon_dagster.alerts.run_failures import RANGE_END, RANGE_START
from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import LIMA_TZ, is_business_day
from pagorecon_dagster.jobs import MAIN_JOB
from pagorecon_dagster.partitions import STORE, parse_keys, store_day_partitions
from pagorecon_dagster.refunds.state import AWAITING_APPROVAL, PAID
from pagorecon_dagster.resources import PagoreconHome
from pagorecon_dagster.warehouse.duckdb import table_type

# What a store can be degraded by, each shown by the check on the asset it concerns.
STATEMENTS, RECONCILIATION, REFUNDS, ALERTS = "statements", "reconciliation", "refunds", "alerts"
# Open alerts of this severity degrade the store; others are listed only.
DEGRADING_SEVERITY = "critical"
RECONCILED_ASSET = dg.AssetKey("recon_items")
HEALTH_JOB = "health"
PARTITION = "dagster/partition"


def lima_today() -> dt.date:
    return dt.datetime.now(ZoneInfo(LIMA_TZ)).date()


def business_days_behind(reached: dt.date | None, today: dt.date, settings: Settings) -> int | None:
    """Peru business days after `reached` and before `today` (0: it reaches the last business day
    before today, or beyond); None when nothing was reached yet."""
    if reached is None:
        return None
    days = (reached + dt.timedelta(days=n) for n in range(1, (today - reached).days))
    return sum(is_business_day(day, settings.extra_non_working_days) for day in days)


@dataclass(frozen=True)
class LastRun:
    run_id: str
    ended_at: dt.datetime   # UTC

    @property
    def lima(self) -> str:
        return self.ended_at.astimezone(ZoneInfo(LIMA_TZ)).strftime("%Y-%m-%d %H:%M") + " Lima"


@dataclass(frozen=True)
class StoreHealth:
    store_id: str
    today: dt.date
    statement_lag_allowed: int
    reconcile_lag_allowed: int
    coverage_date: dt.date | None = None        # the Lima day the store's statements reach
    coverage_lag: int | None = None             # business days behind; None: no statement yet
    reconciled_through: dt.date | None = None   # the latest Lima day reconciled
    reconcile_lag: int | None = None
    last_run: LastRun | None = None             # the latest successful reconcile run covering the store
    open_alerts: dict[str, Counter] = field(default_factory=dict)   # severity -> kind -> open alerts
    refunds_awaiting: int = 0                   # waiting for a person's approval
    refunds_overdue: int = 0                    # past the REFUND_OVERDUE deadline and still unpaid

    @property
    def problems(self) -> dict[str, str]:
        """What makes the store degraded, by aspect; empty when healthy. The one definition."""
        found = {}
        if self.coverage_lag is None:
            found[STATEMENTS] = "no statement yet"
        elif self.coverage_lag > self.statement_lag_allowed:
            found[STATEMENTS] = f"statements {self.coverage_lag} business days behind (allowed {self.statement_lag_allowed})"
        if self.reconcile_lag is None:
            found[RECONCILIATION] = "never reconciled"
        elif self.reconcile_lag > self.reconcile_lag_allowed:
            found[RECONCILIATION] = f"reconciliation {self.reconcile_lag} business days behind (allowed {self.reconcile_lag_allowed})"
        if self.refunds_overdue:
            found[REFUNDS] = f"{self.refunds_overdue} refund(s) overdue"
        critical = sum(self.open_alerts.get(DEGRADING_SEVERITY, Counter()).values())
        if critical:
            found[ALERTS] = f"{critical} {DEGRADING_SEVERITY} alert(s) open"
        return found

    @property
    def degraded(self) -> bool:
        return bool(self.problems)


def assess(con: duckdb.DuckDBPyConnection, instance: dg.DagsterInstance, settings: Settings,
           today: dt.date | None = None) -> list[StoreHealth]:
    """Every configured store's health as of `today` (default: today in Lima)."""
    today = today or lima_today()
    coverage = _by_store(con, "statement_coverage", "SELECT store_id, coverage_date FROM statement_coverage")
    awaiting = _by_store(con, "refunds", "SELECT store_id, count(*) FROM refunds WHERE status = ? GROUP BY ALL", [AWAITING_APPROVAL])
    # The REFUND_OVERDUE rule's refunds (macro overdue_refunds), past their deadline by today and still unpaid.
    overdue = _by_store(
        con, "refunds",
        "SELECT store_id, count(*) FROM overdue_refunds(?) WHERE overdue_day <= ? AND status <> ? GROUP BY ALL",
        [settings.alerts.refund_overdue_business_days, today, PAID],
    )
    alerts: dict[str, dict[str, Counter]] = {}
    if table_type(con, "alerts") is not None:
        for store_id, severity, kind, n in con.execute(
            "SELECT coalesce(store_id, '*'), severity, kind, count(*) FROM alerts WHERE resolved_at IS NULL GROUP BY ALL"
        ).fetchall():
            alerts.setdefault(store_id, {}).setdefault(severity, Counter())[kind] += n
    reconciled = reconciled_through(instance, settings)
    runs = last_runs(instance, settings)
    limits = settings.health
    health = []
    for store_id in settings.store_ids:
        # An alert of no one store (a failed run over several) is every store's.
        store_alerts: dict[str, Counter] = {}
        for source in (alerts.get(store_id, {}), alerts.get("*", {})):
            for severity, kinds in source.items():
                store_alerts[severity] = store_alerts.get(severity, Counter()) + kinds
        health.append(StoreHealth(
            store_id=store_id, today=today,
            statement_lag_allowed=limits.statement_lag_business_days,
            reconcile_lag_allowed=limits.reconcile_lag_business_days,
            coverage_date=coverage.get(store_id),
            coverage_lag=business_days_behind(coverage.get(store_id), today, settings),
            reconciled_through=reconciled.get(store_id),
            reconcile_lag=business_days_behind(reconciled.get(store_id), today, settings),
            last_run=runs.get(store_id),
            open_alerts=store_alerts,
            refunds_awaiting=awaiting.get(store_id, 0),
            refunds_overdue=overdue.get(store_id, 0),
        ))
    return health


def knows_the_rules(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this warehouse has the macros `assess` reads (a warehouse last opened for writing
    by an older pagorecon has not; any writing open brings it up to date)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = 'overdue_refunds'").fetchone()[0])


def _by_store(con: duckdb.DuckDBPyConnection, table: str, sql: str, params: list | None = None) -> dict:
    """`store_id -> value` from a two-column query; empty while `table` does not exist yet."""
    if table_type(con, table) is None:
        return {}
    return dict(con.execute(sql, params or []).fetchall())


def reconciled_through(instance: dg.DagsterInstance, settings: Settings) -> dict[str, dt.date]:
    """Per store, the latest Lima day whose reconciliation the Dagster instance records."""
    known = set(settings.store_ids)
    partitions_def = store_day_partitions(settings)
    keys = [key for key in instance.get_materialized_partitions(RECONCILED_ASSET) if key.split("|")[-1] in known]
    latest: dict[str, dt.date] = {}
    for store_id, day in parse_keys(partitions_def, keys):
        latest[store_id] = max(day, latest.get(store_id, day))
    return latest


def run_stores(tags: dict[str, str], settings: Settings) -> list[str]:
    """The stores a run of the main job covers, from its partition tags (a range covers the stores
    between its two ends in config order)."""
    partitions_def = store_day_partitions(settings)

    def store_of(tag: str) -> str | None:
        if tag not in tags:
            return None
        store_id = partitions_def.get_partition_key_from_str(tags[tag]).keys_by_dimension[STORE]
        return store_id if store_id in settings.store_ids else None

    single = store_of(PARTITION)
    if single:
        return [single]
    first, last = store_of(RANGE_START), store_of(RANGE_END)
    if first is None or last is None:
        return []
    order = settings.store_ids
    return order[order.index(first): order.index(last) + 1]


def last_runs(instance: dg.DagsterInstance, settings: Settings, page: int = 100) -> dict[str, LastRun]:
    """Per store, the latest successful run of the reconcile job that covered it, newest first
    until every store is found."""
    found: dict[str, LastRun] = {}
    cursor = None
    while len(found) < len(settings.store_ids):
        records = instance.get_run_records(
            dg.RunsFilter(job_name=MAIN_JOB, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=page, cursor=cursor
        )
        for record in records:
            ended = dt.datetime.fromtimestamp(record.end_time or record.create_timestamp.timestamp(), dt.timezone.utc)
            for store_id in run_stores(record.dagster_run.tags, settings):
                found.setdefault(store_id, LastRun(record.dagster_run.run_id, ended))
        if len(records) < page:
            break
        cursor = records[-1].dagster_run.run_id
    return found


# -- the checks, one per aspect, on the asset it concerns ------------------------------------------------

class HealthCheckConfig(dg.Config):
    as_of: str = Field(default="", description="judge as of this Lima date YYYY-MM-DD; empty: today")


CHECKED = {
    STATEMENTS: ("statement_coverage", "statements_fresh",
                 "Every store's statements reach within `health.statement_lag_business_days` Peru business days of today"),
    RECONCILIATION: ("recon_items", "reconciliation_fresh",
                     "Every store is reconciled within `health.reconcile_lag_business_days` Peru business days of today"),
    REFUNDS: ("refunds", "no_overdue_refunds", "No approved refund is past its REFUND_OVERDUE deadline unpaid"),
    ALERTS: ("alerts", "no_critical_alerts", f"No {DEGRADING_SEVERITY} alert is open"),
}


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(name, asset=asset, description=description) for asset, name, description in CHECKED.values()],
    can_subset=True,
    description="Store health as of today (orchestration/health.py): one check per aspect, on the asset it concerns.",
)
def store_health(context: dg.AssetCheckExecutionContext, config: HealthCheckConfig, pagorecon: PagoreconHome):
    # A run that selects the guarded assets (a sensor's, the UI's) takes their checks along: health
    # is judged against today, not the run's data, so only the health job judges it.
    if context.run.job_name != HEALTH_JOB:
        return
    settings = pagorecon.settings()
    today = dt.date.fromisoformat(config.as_of) if config.as_of else lima_today()
    with pagorecon.warehouse() as con:
        stores = assess(con, context.instance, settings, today)
    for aspect, (asset, name, _) in CHECKED.items():
        key = dg.AssetCheckKey(dg.AssetKey(asset), name)
        if key not in context.selected_asset_check_keys:
            continue
        failing = {s.store_id: s.problems[aspect] for s in stores if aspect in s.problems}
        yield dg.AssetCheckResult(
            asset_key=asset, check_name=name, passed=not failing,
            metadata={
                "as_of": dg.MetadataValue.text(today.isoformat()),
                "stores": dg.MetadataValue.md(status_table(stores)),
                "failing": dg.MetadataValue.json(failing),
            },
        )


health_checks = [store_health]


def health_job():
    return dg.define_asset_job(HEALTH_JOB, selection=dg.AssetSelection.checks(*health_checks),
                               description="Judge every store's freshness, overdue refunds and critical alerts as of now.")


def health_schedule(settings: Settings) -> dg.ScheduleDefinition:
    """Hourly from the daily run's hour, so a store that falls behind shows in the UI the same day."""
    return dg.ScheduleDefinition(
        name="health_checks", job_name=HEALTH_JOB, cron_schedule=f"30 {settings.schedule.hour}-23 * * *",
        execution_timezone=LIMA_TZ, default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every hour from the daily run on: the health checks (docs/operations.md, Health).",
    )


# -- what `pagorecon status` and the checks show ----------------------------------------------------------

COLUMNS = ("store", "last run", "statements reach", "reconciled through", "open alerts", "refunds", "health")


def _row(s: StoreHealth) -> tuple[str, ...]:
    def reach(day: dt.date | None, lag: int | None) -> str:
        return "none yet" if day is None else f"{day} ({lag} behind)"

    alerts = ", ".join(f"{n} {severity}" for severity, kinds in sorted(s.open_alerts.items()) if (n := sum(kinds.values())))
    return (
        s.store_id,
        f"{s.last_run.lima} ({s.last_run.run_id[:8]})" if s.last_run else "none",
        reach(s.coverage_date, s.coverage_lag),
        reach(s.reconciled_through, s.reconcile_lag),
        alerts or "none",
        f"{s.refunds_awaiting} awaiting approval, {s.refunds_overdue} overdue",
        "DEGRADED: " + "; ".join(s.problems.values()) if s.degraded else "healthy",
    )


def status_lines(stores: list[StoreHealth]) -> list[str]:
    """The per-store table of `pagorecon status`: counts, dates and run ids, no personal data."""
    rows = [COLUMNS, *map(_row, stores)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]


def status_table(stores: list[StoreHealth]) -> str:
    """The same rows as a Markdown table, for the checks' metadata in the Dagster UI."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(_row(s)) + " |" for s in stores])
