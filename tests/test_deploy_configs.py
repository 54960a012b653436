"""deploy/: the instance configs for the Kubernetes and Docker run launchers are what Dagster
accepts, and share the storage and run queue of deploy/dagster.yaml (no cluster here: the
launchers are validated against their config schemas, not started)."""

from pathlib import Path

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config

from pagorecon_dagster.partitions import STORES_TAG

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


@pytest.mark.parametrize("folder, launcher", [("k8s", "K8sRunLauncher"), ("docker", "DockerRunLauncher")])
def test_run_launcher_instance_configs_load(folder, launcher):
    path = DEPLOY / folder / "dagster.yaml"
    config, _ = dagster_instance_config(str(path.parent), "dagster.yaml")  # the instance's own schema
    shipped = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert {key: config[key] for key in ("storage", "run_coordinator")} == {key: shipped[key] for key in ("storage", "run_coordinator")}
    block = config["run_launcher"]
    assert block["class"] == launcher
    launcher_class = __import__(block["module"], fromlist=[launcher]).__dict__[launcher]
    checked = validate_config(launcher_class.config_type(), block["config"])
    assert checked.success, [e.message for e in checked.errors]
    # secrets are named, never written
    assert "PASSWORD" not in yaml.safe_dump(block["config"]).replace("PAGORECON_PG_PASSWORD", "").replace("PGPASSWORD", "")


def test_the_run_queue_limits_runs_by_the_tag_runs_carry():
    limits = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert limits == [{"key": STORES_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    dagster_instance_config(str(DEPLOY), "dagster.yaml")
