"""The email jobs: one per emailed report, on that report's partitions. `pagorecon run` runs each
after its report's job, over the same partitions; in a deployment the automation sensor requests
the email assets after their reports instead."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from pagorecon_dagster.delivery.assets import EMAILS
from pagorecon_dagster.jobs import REPORT_JOBS

# report job -> the job that emails its report
EMAIL_JOBS = {REPORT_JOBS[report]: f"{email}_job" for report, email in EMAILS.items()}


def email_jobs() -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(EMAIL_JOBS[REPORT_JOBS[report]], selection=dg.AssetSelection.assets(email),
                            description=f"Email `{report}` of the selected partitions to its recipients, each version once.")
        for report, email in EMAILS.items()
    ]


def email_runs(report_runs: Iterable[tuple[str, dict[str, str]]]) -> list[tuple[str, dict[str, str]]]:
    """(job, tags) of the email run that follows each report run, over the same partitions."""
    return [(EMAIL_JOBS[job], tags) for job, tags in report_runs if job in EMAIL_JOBS]
