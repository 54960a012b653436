"""Where the warehouse lives. Assets ask this resource; they never know the deployment."""


import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb

from pagorecon_dagster.config import Settings, home_dir, load_settings
from pagorecon_dagster.warehouse.duckdb import connect


class PagoreconHome(dg.ConfigurableResource):
    """`PAGORECON_HOME`: config, landing folder and the DuckDB warehouse."""

    home: str = ""

    @property
    def path(self) -> Path:
        return Path(self.home).expanduser().resolve() if self.home else home_dir()

    def settings(self) -> Settings:
        return load_settings(self.path)

    @contextlib.contextmanager
    def warehouse(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.path / "warehouse.duckdb") as con:
            yield con
