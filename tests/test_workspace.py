"""What `dagster dev -w workspace.yaml` loads, and a partition materialized from Dagster's own CLI."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def dagster(home, tmp_path, *args):
    env = {**os.environ, "PAGORECON_HOME": str(home.path), "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return subprocess.run([DAGSTER, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_workspace_loads_and_a_partition_materializes_from_the_dagster_cli(home, tmp_path):
    home.orders("A1,2026-07-14 10:00:00,paid,PEN,100.00,0.00,PagoEfectivo,,,\n")
    home.statements("90000001,A1,,paid,PEN,100.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T19:30:00-05:00,BCP,,,\n")
    validated = dagster(home, tmp_path, "definitions", "validate", "-w", "workspace.yaml")
    assert validated.returncode == 0, validated.stderr
    assert "All code locations passed validation" in validated.stdout + validated.stderr
    selection = "order_rows,statement_rows,fx_rate_rows,orders,payments,fx_rates,statement_coverage,recon_items,recon_daily_summary"
    run = dagster(home, tmp_path, "asset", "materialize", "-m", "pagorecon_dagster.definitions",
                  "--select", selection, "--partition", "2026-07-14|shop")
    assert run.returncode == 0, run.stderr[-3000:]
    items = home.items()
    assert [(i["order_id"], i["status"]) for i in items] == [("A1", "MATCHED")]


def test_a_bad_config_stops_the_code_location_with_the_key_named(home, tmp_path):
    (home.path / "pagorecon.yaml").write_text("stores:\n  - {id: shop, order_format: woo}\n")
    validated = dagster(home, tmp_path, "definitions", "validate", "-w", "workspace.yaml")
    assert validated.returncode != 0
    assert "`stores[0].order_format` must be one of shopify, canonical, mapped, got 'woo'" in validated.stderr + validated.stdout
