"""Homes whose warehouse catalog is in PostgreSQL, as production runs it: a fresh database per test
on the local server (127.0.0.1:5432, trust auth), dropped after. Tests that use them are marked
`postgres_lake` (`pytest -m postgres_lake` selects them; they run in the normal suite too)."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import yaml

from pagorecon_dagster.warehouse import lake

SERVER = "host=127.0.0.1 port=5432 user=postgres"
PREFIX = "pagorecon_lake_test_"


def _admin(sql: str) -> None:
    con = psycopg2.connect(f"{SERVER} dbname=postgres")
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(sql)
    finally:
        con.close()


def catalog(name: str) -> str:
    """The `warehouse.postgres` libpq string of database `name`."""
    return f"{SERVER} dbname={name}"


@contextlib.contextmanager
def database(template: str | None = None) -> Iterator[str]:
    """A new, empty database (or a copy of `template`), dropped afterwards."""
    name = PREFIX + uuid.uuid4().hex[:12]
    if template:
        lake.close_all()  # PostgreSQL copies a database only while nobody is connected to it
    _admin(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    try:
        yield name
    finally:
        lake.close_all()
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def use_catalog(home: Path, name: str) -> None:
    """Point the home's pagorecon.yaml at database `name` for its warehouse catalog."""
    config_path = Path(home) / "pagorecon.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["warehouse"] = {"catalog": "postgres", "postgres": catalog(name)}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


@contextlib.contextmanager
def copied_home(source: Path, target: Path, template: str) -> Iterator[Path]:
    """`source` (a home on database `template`) copied to `target` on a copy of that database:
    the catalog is told where the copied data files are, as a person moving a lake would."""
    shutil.copytree(source, target)
    with database(template) as name:
        con = psycopg2.connect(catalog(name))
        try:
            with con, con.cursor() as cur:
                cur.execute("UPDATE ducklake_metadata SET value = %s WHERE key = 'data_path'",
                            [f"{target / lake.LOCAL_DATA}/"])
        finally:
            con.close()
        use_catalog(target, name)
        yield target
