"""Everything the pipeline writes is visible in the asset graph, its checks belong to their asset,
and schema changes are numbered migrations applied once (docs/operations.md, Tables)."""

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.warehouse.duckdb import BOOKKEEPING_TABLES, WRITES, Lake, apply_migrations, connect, home_lake, migrations, schema_sql

ROOT = Path(__file__).resolve().parents[1]


def _written_by_assets(defs: dg.Definitions) -> dict[str, set[str]]:
    """Table -> the assets that write it: by key, or listed in the asset's `pagorecon/writes`."""
    writers: dict[str, set[str]] = {}
    for node in defs.resolve_asset_graph().asset_nodes:
        name = node.key.to_user_string()
        for table in {name, *node.metadata.get(WRITES, [])}:
            writers.setdefault(table, set()).add(name)
    return writers


def test_every_table_of_a_demo_warehouse_is_written_by_an_asset_or_is_bookkeeping(demo):
    home = demo.home
    with connect(home_lake(home), read_only=True) as con:
        tables = {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()").fetchall()}
        items = con.execute("SELECT count(*) FROM recon_items").fetchone()[0]
    assert items > 0 and {"recon_items", "recon_item_rows", "reference_cips", "business_calendar"} <= tables

    writers = _written_by_assets(build_definitions(load_settings(home)))
    assert sorted(tables - writers.keys() - BOOKKEEPING_TABLES.keys()) == []
    # what an asset declares exists, and bookkeeping is no asset's
    declared = {t for node in build_definitions(load_settings(home)).resolve_asset_graph().asset_nodes
                for t in node.metadata.get(WRITES, [])}
    assert sorted(declared - tables) == []
    assert sorted(BOOKKEEPING_TABLES.keys() & declared) == []
    assert writers["reference_cips"] == {"reference_counts"} and writers["recon_item_rows"] == {"recon_items"}
    assert writers["business_calendar"] == {"business_calendar"}
    # the list is the one operators read
    operations = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert [t for t in BOOKKEEPING_TABLES if f"| `{t}` |" not in operations] == []


def test_the_reconciliation_checks_are_declared_on_the_asset_they_guard(home):
    import pagorecon_dagster.reconciliation.checks as checks

    defs = build_definitions(load_settings(home.path))
    standalone = {key for checks_def in defs.asset_checks or () for key in checks_def.check_keys}
    for asset, name in (("recon_items", "each_order_once"), ("recon_daily_summary", "summary_matches_items"),
                        ("reference_counts", "counts_match_a_recount")):
        key = dg.AssetCheckKey(dg.AssetKey(asset), name)
        # evaluated in the asset's own body, where its partitions are at hand, not as a check of its own
        assert key in defs.resolve_assets_def(asset).check_keys and key not in standalone, key
    assert not hasattr(checks, "run_window")


def test_migrations_are_applied_once_in_order_and_an_older_warehouse_is_upgraded(tmp_path):
    names = [m.name for m in migrations()]
    assert names == sorted(names) and len(names) >= 3 and all(n[:4].isdigit() for n in names)
    lake = Lake.in_folder(tmp_path / "lake")
    with connect(lake) as con:  # a new warehouse records every migration on its first open
        assert [n for (n,) in con.execute("SELECT name FROM schema_migrations ORDER BY applied_at, name").fetchall()] == names
        assert apply_migrations(con) == []
    with connect(lake) as con:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(names)

    # an older warehouse, a single DuckDB file as earlier versions kept it (`pagorecon migrate` brings
    # it up to date this way before moving it into the lake): no schema_migrations, a CIP needed a
    # reference, alerts were never resolved, recon_items was a table
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(schema_sql())
        con.execute("DROP TABLE schema_migrations")
        con.execute("ALTER TABLE statement_rows ALTER COLUMN reference SET NOT NULL")
        con.execute("ALTER TABLE alerts DROP COLUMN resolved_at")
        con.execute("CREATE TABLE recon_items AS SELECT * EXCLUDE (paid_at, evidence_detail, evidence_code, evidence_args, provisional), "
                    "'as written then' AS evidence FROM recon_item_rows")
        con.execute("DROP TABLE recon_item_rows")
        con.execute(
            "INSERT INTO recon_items (store_id, business_date, status, refund_candidate, refunded_cents, evidence) "
            "VALUES ('shop', DATE '2026-07-14', 'MATCHED', false, 0, 'as written then')"
        )
    with duckdb.connect(str(path)) as con:
        con.execute(schema_sql())  # as opening it did: the DDL, then the migrations it has not had
        assert apply_migrations(con) == names
        assert [n for (n,) in con.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()] == names
        nullable = con.execute(
            "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'statement_rows' AND column_name = 'reference'"
        ).fetchone()[0]
        assert nullable == "YES"
        assert con.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'alerts' AND column_name = 'resolved_at'").fetchone()[0] == 1
        assert con.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'recon_items'").fetchone()[0] == "VIEW"
        assert con.execute("SELECT evidence_detail FROM recon_item_rows").fetchall() == [("as written then",)]
        assert apply_migrations(con) == []  # applied once


def test_a_failing_migration_leaves_no_record_and_no_change(tmp_path, monkeypatch):
    import pagorecon_dagster.warehouse.duckdb as warehouse

    lake = Lake.in_folder(tmp_path / "lake")
    with connect(lake):
        pass
    broken = warehouse.Migration("9999_broken", ".sql")
    monkeypatch.setattr(warehouse, "migrations", lambda: (broken,))
    monkeypatch.setattr(warehouse.Migration, "apply", lambda self, con: (con.execute("CREATE TABLE half_done AS SELECT 1"),
                                                                         con.execute("SELECT * FROM no_such_table")))
    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        with connect(lake):
            pass
    with connect(lake, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM schema_migrations WHERE name = '9999_broken'").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'half_done' AND table_catalog = current_database()").fetchone()[0] == 0
