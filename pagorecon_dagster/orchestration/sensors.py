"""The landing sensor: new files under landing/ request runs for exactly the store x day
partitions their rows touch (orchestration/landing.py says which).

Runs: one per store and contiguous range of its touched days, so a run never spans days nothing
touched (a late payment for a month-old order is two short runs, not a month). A new Dagster
instance (no cursor yet) skips content that `ingested_files` already holds, so `dagster dev` over
an existing home (e.g. after `pagorecon demo`) starts nothing; later, a file new to the cursor
requests its days even if another run took it in first. Run keys come from the content hashes of the
files behind the run, so a re-dropped file starts nothing. The cursor is the JSON list of content
hashes already handled, pruned to the files still in landing/ (archiving files bounds it); it
lives in the Dagster instance, so it survives restarts. When a run holds the warehouse the tick is
skipped and the cursor stays: the same files are looked at next tick."""

import datetime as dt
import hashlib
import json
from zoneinfo import ZoneInfo

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.jobs import MAIN_JOB
from pagorecon_dagster.orchestration import landing
from pagorecon_dagster.orchestration.schedules import TRIGGER_TAG
from pagorecon_dagster.partitions import range_tags

INTERVAL_SECONDS = 60
MAX_SEEN = 200_000  # hard bound on the cursor, in hashes (about 13 MB); landing/ is pruned long before


def parse_cursor(cursor: str | None) -> set[str]:
    if not cursor:
        return set()
    return set(json.loads(cursor).get("seen", []))


def dump_cursor(seen: set[str]) -> str:
    return json.dumps({"seen": sorted(seen)[:MAX_SEEN]}, separators=(",", ":"))


def plan_runs(settings: Settings, files: list[landing.LandingFile], touched: dict[str, landing.Touched],
              today: dt.date) -> list[dg.RunRequest]:
    """One run per store (config order) and contiguous range of its touched days."""
    days_by_store: dict[str, set[dt.date]] = {}
    hashes_by_store: dict[str, set[str]] = {}
    for f in files:
        for store_id, days in touched[f.sha256].days.items():
            valid = landing.in_partitions(settings, days, today)
            if valid:
                days_by_store.setdefault(store_id, set()).update(valid)
                hashes_by_store.setdefault(store_id, set()).add(f.sha256)
    requests = []
    for store_id in settings.store_ids:
        if store_id not in days_by_store:
            continue
        digest = hashlib.sha256("\n".join(sorted(hashes_by_store[store_id])).encode()).hexdigest()[:32]
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
        description="New files in landing/ request runs for the store x day partitions their rows touch.",
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
        try:
            con = landing.open_warehouse(settings)
        except landing.WarehouseBusy as exc:
            return dg.SkipReason(f"{exc}; {len(new)} new file(s) wait for the next tick")
        try:
            # A new instance (no cursor) adopts what the warehouse already holds; once it has a
            # cursor, a file new to it requests its days even if another run took it in meanwhile
            # (that run's window may not hold every day the file touches).
            ingested = landing.already_ingested(con, new_hashes) if context.cursor is None else set()
            new = [f for f in new if f.sha256 not in ingested]
            touched = landing.touched_partitions(settings, new, con, today) if new else {}
        finally:
            if con is not None:
                con.close()
        present = {f.sha256 for f in files}
        cursor = dump_cursor((seen & present) | new_hashes)
        if not new:
            return dg.SensorResult(skip_reason=f"the {len(ingested)} new file(s) in landing/ are already ingested", cursor=cursor)
        requests = plan_runs(settings, new, touched, today)
        for f in new:
            days = {s: [d.isoformat() for d in landing.in_partitions(settings, ds, today)] for s, ds in touched[f.sha256].days.items()}
            context.log.info(f"landing/{f.relative}: touches {json.dumps(days) if days else 'no partition'}")
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return landing_files
