"""RUN_FAILED alerts: one per failed Dagster run (alert_id `RUN_FAILED|<run_id>`), dated by the
Lima day it failed, naming the job, the window, the failed step and the error (masked)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb

from pagorecon_dagster.alerts.delivery import mask_message
from pagorecon_dagster.alerts.rules import RUN_FAILED
from pagorecon_dagster.core.lima import LIMA_TZ

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def failure_message(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """`Run <id> of job <job> (<window>) failed at step <step>: <first line of the error>`."""
    step, error = None, None
    for entry in instance.all_logs(run.run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}):
        event = entry.dagster_event
        info = getattr(getattr(event, "event_specific_data", None), "error", None)
        if event.event_type == dg.DagsterEventType.STEP_FAILURE and step is None:
            step, error = event.step_key, root_cause(info) or event.message
        elif error is None:
            error = root_cause(info) or event.message
    window = ""
    if RANGE_START in run.tags:
        window = f" ({run.tags[RANGE_START]} .. {run.tags.get(RANGE_END, '?')})"
    elif "dagster/partition" in run.tags:
        window = f" ({run.tags['dagster/partition']})"
    where = f" at step {step}" if step else ""
    first_line = (error or "no error message recorded").strip().splitlines()[0][:500]
    return mask_message(f"Run {run.run_id} of job {run.job_name}{window} failed{where}: {first_line}")


def root_cause(info) -> str | None:
    """The innermost error's message: what went wrong, not Dagster's wrapper around it."""
    while info is not None and info.cause is not None:
        info = info.cause
    return info.message.strip() if info is not None else None


def failed_at(instance: dg.DagsterInstance, run_id: str) -> dt.datetime:
    """When the run ended, from its record (now, if the record has no end time yet)."""
    record = instance.get_run_record_by_id(run_id)
    if record is not None and record.end_time:
        return dt.datetime.fromtimestamp(record.end_time, dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc)


def record_run_failure(con: duckdb.DuckDBPyConnection, instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Insert the run's RUN_FAILED alert unless it is already there. True when inserted."""
    alert_id = f"{RUN_FAILED}|{run.run_id}"
    if con.execute("SELECT count(*) FROM alerts WHERE alert_id = ?", [alert_id]).fetchone()[0]:
        return False
    stores = {run.tags[t].split("|")[-1] for t in (RANGE_START, RANGE_END) if t in run.tags}
    ended = failed_at(instance, run.run_id)
    day = ended.astimezone(ZoneInfo(LIMA_TZ)).date()
    con.execute(
        """INSERT INTO alerts (alert_id, kind, store_id, business_date, severity, value, threshold, message, created_at)
           VALUES (?, ?, ?, ?, 'critical', ?, NULL, ?, ?)""",
        [alert_id, RUN_FAILED, stores.pop() if len(stores) == 1 else None, day, run.run_id,
         failure_message(instance, run), ended],
    )
    return True

