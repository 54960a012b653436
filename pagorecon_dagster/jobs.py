"""The main job: what one run over a store x day window materializes; the report jobs that write
the reports on partitions of their own (per date, per store x month) after it; and the index job
that rewrites reports/index.html after those."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

import dagster as dg

from pagorecon_dagster.partitions import partition_key, range_tags_of
from pagorecon_dagster.reports.assets import FOLLOWING_REPORTS, INDEX, RECONCILED

MAIN_JOB = "reconcile"
# Asset groups the main job materializes for a store x day window (all on the same partitions).
MAIN_JOB_GROUPS = ("ingestion", "reconciliation", "alerts", "reports")
# Refund intake belongs to the run (the day's alerts and reports see the day's refunds); paying
# out, the rest of group `refunds`, is the sensor-started `refund_payout` job.
MAIN_JOB_ASSETS = ("refunds",)
# A run has one partitions definition: the reports per date and per store x month are not in the
# main job. The automation sensor requests them after it; `pagorecon run` runs them itself.
REPORT_JOBS = {asset: f"{asset}_job" for asset in FOLLOWING_REPORTS}
# The index has no partitions: its own job, run last.
INDEX_JOB = f"{INDEX}_job"


@functools.cache  # one definition: the sensors that request it target this same object
def main_job():
    # Health is judged against today, not the run's data: its checks run in a job of their own.
    from pagorecon_dagster.orchestration.health import health_checks

    return dg.define_asset_job(
        MAIN_JOB,
        selection=(dg.AssetSelection.groups(*MAIN_JOB_GROUPS) | dg.AssetSelection.assets(*MAIN_JOB_ASSETS))
        - dg.AssetSelection.assets(*FOLLOWING_REPORTS, INDEX) - dg.AssetSelection.checks(*health_checks),
        description="Ingest landing/, bring the current state up to date, reconcile, summarize, take refunds in, alert and "
        "write the daily reports of the selected store x day partitions.",
    )


def report_jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        *(dg.define_asset_job(job, selection=dg.AssetSelection.assets(asset),
                              description=f"Write `{asset}` for the selected partitions from what the warehouse holds.")
          for asset, job in REPORT_JOBS.items()),
        dg.define_asset_job(INDEX_JOB, selection=dg.AssetSelection.assets(INDEX),
                            description="Write reports/index.html from what the warehouse and the report folder hold."),
    ]


def following_report_runs(
    definitions: dg.Definitions, store_ids: Sequence[str], start: dt.date, end: dt.date
) -> list[tuple[str, dict[str, str]]]:
    """(job, tags) of one run per report job over exactly the partitions that the reconciliation
    of store_ids x start..end leads to, mapped as the report assets map their dependencies."""
    store_days = definitions.resolve_assets_def(RECONCILED[0]).partitions_def
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    reconciled = store_days.subset_with_partition_keys([partition_key(s, d) for s in store_ids for d in days])
    runs = []
    for asset, job in REPORT_JOBS.items():
        report = definitions.resolve_assets_def(asset)
        mapping = report.get_partition_mapping(dg.AssetKey(RECONCILED[0]))
        following = mapping.get_downstream_partitions_for_partitions(reconciled, store_days, report.partitions_def)
        runs.append((job, range_tags_of(report.partitions_def, following.get_partition_keys())))
    return runs
