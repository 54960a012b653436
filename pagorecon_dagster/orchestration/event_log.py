"""The embedded default's Dagster event log: Dagster's own SQLite event log, with the batches of
asset events it hands over written in one transaction per database.

A run over many partitions records one materialization per asset and partition. Dagster's SQLite
event log writes each in its own connections and transactions (the run's database, then the
index): about 15 ms each here, 3,650 partitions x 4 assets = 212 s of a year's backfill of 10
stores (benchmarks/README.md). Dagster groups a step's asset events into batches when
`DAGSTER_EVENT_BATCH_SIZE` is set (the CLI sets it) and hands each batch to `store_event_batch`,
which PostgreSQL's event log writes at once and SQLite's writes event by event; this class writes
it at once. The files and tables are Dagster's own, so a home keeps its history and `dagster dev`
reads it as before."""

from __future__ import annotations

import os
from collections.abc import Sequence

from dagster._config import StringSource
from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._serdes import ConfigurableClassData

# What `pagorecon` writes into a new local DAGSTER_HOME (cli.py), and what it wrote before.
LOCAL_DAGSTER_YAML = """# Local runs of `pagorecon`: SQLite storage in this folder; asset events written in batches.
telemetry:
  enabled: false
event_log_storage:
  module: pagorecon_dagster.orchestration.event_log
  class: BatchedSqliteEventLogStorage
  config:
    dagster_home:
      env: DAGSTER_HOME
"""
EARLIER_LOCAL_DAGSTER_YAML = "# Local runs of `pagorecon`: SQLite storage in this folder.\ntelemetry:\n  enabled: false\n"
# Events of a step written together (Dagster's setting, read when each event is handled).
EVENT_BATCH_SIZE = "1000"


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose `store_event_batch` writes the batch in one transaction on the
    run's database and one on the index, as `store_event` would event by event."""

    @classmethod
    def config_type(cls):
        # The instance's own folder (`{env: DAGSTER_HOME}` in dagster.yaml, read by Dagster's config):
        # the log lives where Dagster's default puts it, $DAGSTER_HOME/history/runs, wherever the home moves.
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value) -> BatchedSqliteEventLogStorage:
        return cls(base_dir=os.path.join(config_value["dagster_home"], "history", "runs", ""), inst_data=inst_data)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        runs = {event.run_id for event in events}
        if len(runs) != 1 or not all(event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS for event in events):
            super().store_event_batch(events)  # not what Dagster batches today: event by event
            return
        statements = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(runs.pop()) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:
            ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, ids)
            # the asset's row keeps its latest event of each kind, as PostgreSQL's batch does
            latest = {(event.dagster_event.asset_key, event.dagster_event_type): (event, event_id)
                      for event, event_id in zip(events, ids)}
            for event, event_id in latest.values():
                self._store_asset_event(conn, event, event_id)
