"""Store x Lima-day partitions. The store list comes from `pagorecon.yaml`: adding a store there
adds its partitions, with no code change."""

from __future__ import annotations

import datetime as dt
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


def range_tags(store_ids: Sequence[str], start: dt.date, end: dt.date) -> dict[str, str]:
    """Tags of one run over the rectangle stores[0]..stores[-1] x start..end (stores contiguous
    in config order)."""
    return {
        "dagster/asset_partition_range_start": str(partition_key(store_ids[0], start)),
        "dagster/asset_partition_range_end": str(partition_key(store_ids[-1], end)),
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
