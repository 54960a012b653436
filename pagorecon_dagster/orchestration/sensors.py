"""The landing sensor: new files under landing/ are ingested, then the store x day partitions they
change are reconciled (docs/operations.md, The landing sensor).

The sensor lists landing/ by content hash and compares it with `ingested_files`:
- files not ingested yet start one run of the ingestion assets (the main job's unpartitioned
  `ingestion` group: raw rows, current state), which records with each file the store x days it
  may change (`changed_days`);
- files ingested (by that run, or by any other run first) request the reconcile runs for those
  days: one per store and contiguous range of its days, so a run never spans days nothing touched
  (a late payment for a month-old order is two short runs, not a month).
A new Dagster instance (no cursor yet) adopts content that `ingested_files` already holds, so
`dagster dev` over an existing home (e.g. after `pagorecon demo`) starts nothing. Run keys come
from the content hashes of the files behind the run, so a re-dropped file starts nothing. The
cursor is the JSON list of content hashes whose reconcile runs were requested, pruned to the files
still in landing/ (archiving files bounds it); it lives in the Dagster instance, so it survives
restarts. When a run holds the warehouse the tick is skipped and the cursor stays: the same files
are looked at next tick."""

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.ingestion.assets import GROUP as INGESTION_GROUP
from pagorecon_dagster.ingestion.assets import current_state_assets, raw_assets
from pagorecon_dagster.jobs import MAIN_JOB
from pagorecon_dagster.orchestration import landing
from pagorecon_dagster.orchestration.schedules import TRIGGER_TAG
from pagorecon_dagster.partitions import range_tags

INTERVAL_SECONDS = 60
MAX_SEEN = 200_000  # hard bound on the cursor, in hashes (about 13 MB); landing/ is pruned long before
# The ingestion run: every asset of group `ingestion`, none of them partitioned.
INGESTION_ASSETS = [key for assets in (*raw_assets, *current_state_assets) for key in assets.keys]


def parse_cursor(cursor: str | None) -> set[str]:
    if not cursor:
        return set()
    return set(json.loads(cursor).get("seen", []))


def dump_cursor(seen: set[str]) -> str:
    return json.dumps({"seen": sorted(seen)[:MAX_SEEN]}, separators=(",", ":"))


def _digest(hashes: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()[:32]


def ingestion_request(files: list[landing.LandingFile]) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"ingest:{_digest(f.sha256 for f in files)}",
        asset_selection=INGESTION_ASSETS,
        tags={TRIGGER_TAG: "landing_files"},
    )


def plan_runs(settings: Settings, touched: dict[str, landing.Touched], today: dt.date) -> list[dg.RunRequest]:
    """One run per store (config order) and contiguous range of its touched days."""
    days_by_store: dict[str, set[dt.date]] = {}
    hashes_by_store: dict[str, set[str]] = {}
    for sha, found in touched.items():
        for store_id, days in found.days.items():
            valid = landing.in_partitions(settings, days, today)
            if valid:
                days_by_store.setdefault(store_id, set()).update(valid)
                hashes_by_store.setdefault(store_id, set()).add(sha)
    requests = []
    for store_id in settings.store_ids:
        if store_id not in days_by_store:
            continue
        digest = _digest(hashes_by_store[store_id])
        for start, end in landing.day_ranges(days_by_store[store_id]):
            requests.append(
                dg.RunRequest(
                    run_key=f"landing:{store_id}:{start.isoformat()}:{end.isoformat()}:{digest}",
                    tags={**range_tags([store_id], start, end), TRIGGER_TAG: "landing_files"},
                )
            )
    return requests


def landing_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_files",
        job_name=MAIN_JOB,
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"New files in landing/ start a run of the {INGESTION_GROUP} assets; once ingested, the store x day "
        "partitions their loading recorded as changed are reconciled.",
    )
    def landing_files(context: dg.SensorEvaluationContext):
        seen = parse_cursor(context.cursor)
        files = landing.scan(settings)
        new, new_hashes = [], set()
        for f in files:
            if f.sha256 not in seen and f.sha256 not in new_hashes:
                new.append(f)
                new_hashes.add(f.sha256)
        if not new:
            return dg.SkipReason(f"no new file among {len(files)} in landing/")
        today = dt.datetime.now(ZoneInfo(LIMA_TZ)).date()
        con = landing.open_warehouse(settings)
        try:
            touched = landing.touched_by_ingested(settings, con, new_hashes, today)
        finally:
            if con is not None:
                con.close()
        waiting = [f for f in new if f.sha256 not in touched]
        present = {f.sha256 for f in files}
        cursor = dump_cursor((seen & present) | set(touched))
        requests = [ingestion_request(waiting)] if waiting else []
        if context.cursor is None:
            # A new instance adopts what the warehouse already holds: those runs happened.
            if not requests:
                return dg.SensorResult(skip_reason=f"the {len(touched)} new file(s) in landing/ are already ingested", cursor=cursor)
            return dg.SensorResult(run_requests=requests, cursor=cursor)
        requests += plan_runs(settings, touched, today)
        for f in new:
            if f.sha256 in touched:
                days = {s: [d.isoformat() for d in landing.in_partitions(settings, ds, today)]
                        for s, ds in touched[f.sha256].days.items()}
                context.log.info(f"landing/{f.relative}: touches {json.dumps(days) if days else 'no partition'}")
        for f in waiting:
            context.log.info(f"landing/{f.relative}: new, to be ingested")
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return landing_files
