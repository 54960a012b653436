"""Store x Lima-day partitions. The store list comes from `pagorecon.yaml`: adding a store there
adds its partitions, with no code change."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable, Sequence

import dagster as dg

from pagorecon_dagster.config import Settings

STORE = "store"
DATE = "date"


def store_day_partitions(settings: Settings) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            STORE: dg.StaticPartitionsDefinition(settings.store_ids),
            DATE: dg.DailyPartitionsDefinition(
                start_date=settings.start_date.isoformat(), timezone="America/Lima", end_offset=1
            ),
        }
    )


def partition_key(store_id: str, day: dt.date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({STORE: store_id, DATE: day.isoformat()})


def parse_keys(partitions_def: dg.MultiPartitionsDefinition, keys: Iterable[str]) -> list[tuple[str, dt.date]]:
    parsed = []
    for key in keys:
        mk = key if isinstance(key, dg.MultiPartitionKey) else partitions_def.get_partition_key_from_str(key)
        by_dim = mk.keys_by_dimension
        parsed.append((by_dim[STORE], dt.date.fromisoformat(by_dim[DATE])))
    return parsed


# The stores a run covers, for the queued run coordinator's limits (deploy/dagster.yaml: one run
# of the same stores at a time; runs of other stores go side by side).
STORES_TAG = "pagorecon/stores"


def range_tags(store_ids: Sequence[str], start: dt.date, end: dt.date) -> dict[str, str]:
    """Tags of one run over the rectangle stores[0]..stores[-1] x start..end (stores contiguous
    in config order)."""
    return {
        "dagster/asset_partition_range_start": str(partition_key(store_ids[0], start)),
        "dagster/asset_partition_range_end": str(partition_key(store_ids[-1], end)),
        STORES_TAG: ",".join(store_ids),
    }


def contiguous_store_blocks(settings: Settings, selected: Sequence[str]) -> list[list[str]]:
    """Selected stores grouped into runs of neighbours in config order (a run covers a rectangle)."""
    chosen = set(selected)
    blocks: list[list[str]] = []
    current: list[str] = []
    for store_id in settings.store_ids:
        if store_id in chosen:
            current.append(store_id)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


# The reports that cover more than one store x day have the partitions of what they write, and
# follow the reconciliation through these mappings (the CLI asks the same mappings which to run).
MONTH = "month"
LIMA = "America/Lima"
# The partition mappings between differently partitioned assets are what the reports need;
# Dagster still labels them beta.
warnings.filterwarnings("ignore", category=dg.BetaWarning)


def lima_day_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """One partition per Lima date (the all-stores report: every store on one date)."""
    return dg.DailyPartitionsDefinition(start_date=settings.start_date.isoformat(), timezone=LIMA, end_offset=1)


def store_month_partitions(settings: Settings) -> dg.MultiPartitionsDefinition:
    """Store x Lima month (the month close). The first month is the whole month of `start_date`."""
    return dg.MultiPartitionsDefinition(
        {
            STORE: dg.StaticPartitionsDefinition(settings.store_ids),
            MONTH: dg.MonthlyPartitionsDefinition(
                start_date=settings.start_date.replace(day=1).isoformat(), timezone=LIMA, end_offset=1
            ),
        }
    )


def every_store_of_the_day() -> dg.PartitionMapping:
    """A date depends on that date of every store."""
    return dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=DATE)


def every_day_of_the_store_month() -> dg.PartitionMapping:
    """A store's month depends on every day of that month for that store (days before
    `start_date` or after today do not exist and are not waited for)."""
    return dg.MultiPartitionMapping(
        {
            STORE: dg.DimensionPartitionMapping(STORE, dg.IdentityPartitionMapping()),
            DATE: dg.DimensionPartitionMapping(MONTH, dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)),
        }
    )


def store_month_key(store_id: str, month: dt.date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({STORE: store_id, MONTH: month.replace(day=1).isoformat()})


def parse_store_months(partitions_def: dg.MultiPartitionsDefinition, keys: Iterable[str]) -> list[tuple[str, dt.date]]:
    """(store, first day of the month) of each store x month key."""
    parsed = []
    for key in keys:
        mk = key if isinstance(key, dg.MultiPartitionKey) else partitions_def.get_partition_key_from_str(key)
        parsed.append((mk.keys_by_dimension[STORE], dt.date.fromisoformat(mk.keys_by_dimension[MONTH])))
    return parsed


def parse_days(keys: Iterable[str]) -> list[dt.date]:
    return [dt.date.fromisoformat(key) for key in keys]


def range_tags_of(partitions_def: dg.PartitionsDefinition, keys: Iterable[str]) -> dict[str, str]:
    """Tags of one run over `keys`, which must fill one range: consecutive dates, or for two
    dimensions a rectangle (a block of neighbouring stores x consecutive months)."""
    wanted = {str(key) for key in keys}
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        ends = []
        for pick in (min, max):
            by_dim = {}
            for dim in partitions_def.partitions_defs:
                order = {k: n for n, k in enumerate(dim.partitions_def.get_partition_keys())}
                values = {partitions_def.get_partition_key_from_str(k).keys_by_dimension[dim.name] for k in wanted}
                by_dim[dim.name] = pick(values, key=order.__getitem__)
            ends.append(str(dg.MultiPartitionKey(by_dim)))
        first, last = ends
    else:
        order = {k: n for n, k in enumerate(partitions_def.get_partition_keys())}
        first, last = min(wanted, key=order.__getitem__), max(wanted, key=order.__getitem__)
    covered = {str(k) for k in partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))}
    if covered != wanted:
        raise ValueError(f"partitions {sorted(wanted)} are not one range: {first}..{last} also holds {sorted(covered - wanted)}")
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
