"""The Dagster code location: assets, checks, the main job, resources. Stores and partitions come
from `$PAGORECON_HOME/pagorecon.yaml`."""


import dagster as dg

from pagorecon_dagster.config import Settings, load_settings
from pagorecon_dagster.ingestion.assets import current_state_assets, raw_assets
from pagorecon_dagster.ingestion.checks import ingestion_checks
from pagorecon_dagster.reconciliation.assets import reconciliation_assets
from pagorecon_dagster.reconciliation.checks import reconciliation_checks
from pagorecon_dagster.resources import PagoreconHome

MAIN_JOB = "reconcile"


def build_definitions(settings: Settings) -> dg.Definitions:
    assets = [*raw_assets, *current_state_assets, *reconciliation_assets(settings)]
    main_job = dg.define_asset_job(
        MAIN_JOB,
        selection=dg.AssetSelection.all(),
        description="Ingest landing/, rebuild current state, reconcile and summarize the selected store x day partitions.",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=[*ingestion_checks, *reconciliation_checks],
        jobs=[main_job],
        resources={"pagorecon": PagoreconHome(home=str(settings.home))},
        # One DuckDB file: steps run one after another in the run's process.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
