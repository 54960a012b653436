"""The Dagster code location. Each domain contributes its own definitions (`<domain>/defs.py`,
a `build(settings) -> dg.Definitions`); this module merges them and adds the global policies.
Stores and partitions come from `$PAGORECON_HOME/pagorecon.yaml`."""

import importlib

import dagster as dg

from pagorecon_dagster.config import Settings, load_settings
from pagorecon_dagster.resources import PagoreconHome

MAIN_JOB = "reconcile"
# Asset groups the main job materializes for a store x day window (all on the same partitions).
MAIN_JOB_GROUPS = ("ingestion", "reconciliation", "alerts", "reports")
DOMAINS = ("ingestion", "reconciliation", "refunds", "alerts", "reports", "orchestration")


def validate_policies(settings: Settings) -> None:
    """Values of the domain sections, checked at start so a bad config never waits for a run."""
    from pagorecon_dagster.alerts.policy import AlertPolicy
    from pagorecon_dagster.orchestration.schedules import SchedulePolicy
    from pagorecon_dagster.refunds.payout import executor_name

    AlertPolicy.from_settings(settings)
    SchedulePolicy.from_settings(settings)
    executor_name(settings)


def build_definitions(settings: Settings) -> dg.Definitions:
    validate_policies(settings)
    domain_defs = []
    for domain in DOMAINS:
        try:
            module = importlib.import_module(f"pagorecon_dagster.{domain}.defs")
        except ModuleNotFoundError as exc:
            if exc.name != f"pagorecon_dagster.{domain}.defs":
                raise
            continue
        domain_defs.append(module.build(settings))
    main_job = dg.define_asset_job(
        MAIN_JOB,
        selection=dg.AssetSelection.groups(*MAIN_JOB_GROUPS),
        description="Ingest landing/, rebuild current state, reconcile, summarize and report the selected store x day partitions.",
    )
    return dg.Definitions.merge(
        *domain_defs,
        dg.Definitions(
            jobs=[main_job],
            resources={"pagorecon": PagoreconHome(home=str(settings.home))},
            # One DuckDB file: steps run one after another in the run's process.
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
