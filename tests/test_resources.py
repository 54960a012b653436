"""The warehouse, the refund provider and the PagoEfectivo API are resources the definitions
configure from the environment: each setting is an EnvVar of its variable, read where the
resource is used, and a secret never shows in a repr, in what the Dagster UI is given, in a run's
config or in its events."""

from __future__ import annotations

import os

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.refunds.payout import PAYOUT_FILE, executor_name
from pagorecon_dagster.refunds.sandbox_provider import SandboxRefundProvider
from pagorecon_dagster.resources import PAGOEFECTIVO, REFUND_PROVIDER, WAREHOUSE, PagoEfectivoApi, RefundProvider, Warehouse

REFUND_KEY, PE_SECRET = "rk-refund-key-only-in-the-environment", "pe-secret-only-in-the-environment"
ENVIRONMENT = {
    "PAGORECON_REFUND_API_URL": "https://refunds.example/v1",
    "PAGORECON_REFUND_API_KEY": REFUND_KEY,
    "PAGORECON_REFUND_API_TIMEOUT_SECONDS": "7.5",
    "PAGORECON_REFUND_EXECUTOR": "api",
    "PAGORECON_DUCKDB_MEMORY_LIMIT": "300MB",
    "PAGORECON_PE_ACCESS_KEY": "pe-access",
    "PAGORECON_PE_API_URL": "https://pe.example",
    "PAGORECON_PE_SHOP_SECRET_KEY": PE_SECRET,
    "PAGORECON_PE_SHOP_SERVICE_ID": "1001",
}


@pytest.fixture
def environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("PAGORECON_REFUND_") or name.startswith("PAGORECON_PE_") or name == "PAGORECON_DUCKDB_MEMORY_LIMIT":
            monkeypatch.delenv(name)
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_the_definitions_resources_are_env_vars_read_where_they_are_used(home, environment):
    resources = build_definitions(load_settings(home.path)).resources
    provider, pagoefectivo, warehouse = resources[REFUND_PROVIDER], resources[PAGOEFECTIVO], resources[WAREHOUSE]
    configured = {"url": provider.url, "key": provider.key, "timeout_seconds": provider.timeout_seconds,
                  "executor": provider.executor, "memory_limit": warehouse.memory_limit, **pagoefectivo.variables}
    assert all(isinstance(field, dg.EnvVar) for field in configured.values())
    assert {field.env_var_name for field in configured.values()} == set(ENVIRONMENT)  # each field names its variable

    # read in the run, not when the definitions were loaded
    environment.setenv("PAGORECON_REFUND_API_URL", "https://moved.example/v1/")
    seen = {}

    @dg.asset
    def probe(pagorecon: Warehouse, refund_provider: RefundProvider, pagoefectivo: PagoEfectivoApi) -> None:
        api = refund_provider.api_settings()
        shop = pagoefectivo.credentials_for("shop")
        with pagorecon.warehouse() as con:
            memory = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
        seen.update(url=api.url, key=api.key, timeout=api.timeout_seconds, executor=refund_provider.executor_value(),
                    memory=memory, pe=(shop.access_key, shop.secret_key, shop.service_id, shop.api_url),
                    reprs=repr(refund_provider) + repr(pagoefectivo) + repr(api) + repr(shop))

    assert dg.materialize([probe], resources=resources).success
    assert {k: v for k, v in seen.items() if k != "reprs"} == {
        "url": "https://moved.example/v1", "key": REFUND_KEY, "timeout": 7.5, "executor": "api", "memory": "286.1 MiB",
        "pe": ("pe-access", PE_SECRET, "1001", "https://pe.example"),
    }
    assert REFUND_KEY not in seen["reprs"] and PE_SECRET not in seen["reprs"]


def test_an_unset_variable_leaves_the_default(home, environment):
    for name in ("PAGORECON_REFUND_API_URL", "PAGORECON_REFUND_API_KEY", "PAGORECON_REFUND_EXECUTOR", "PAGORECON_PE_SHOP_SECRET_KEY"):
        environment.delenv(name)
    resources = build_definitions(load_settings(home.path)).resources
    assert (resources[REFUND_PROVIDER].url, resources[REFUND_PROVIDER].key, resources[REFUND_PROVIDER].executor) == ("", "", "")
    assert "PAGORECON_PE_SHOP_SECRET_KEY" not in resources[PAGOEFECTIVO].variables
    assert executor_name(load_settings(home.path), provider=resources[REFUND_PROVIDER]) == PAYOUT_FILE


def test_a_secret_key_never_shows_in_reprs_the_ui_or_a_run(taken_in, environment):
    with SandboxRefundProvider() as sandbox:
        environment.setenv("PAGORECON_REFUND_API_URL", sandbox.url)
        environment.setenv("PAGORECON_REFUND_API_KEY", sandbox.api_key)
        definitions = build_definitions(load_settings(taken_in.path))
        snapshot = serialize_value(RepositorySnap.from_def(definitions.get_repository_def()))  # what the UI is given
        assert "PAGORECON_REFUND_API_KEY" in snapshot  # the variable's name stands where its value would
        shown = [snapshot, *(repr(resource) for resource in definitions.resources.values())]
        instance = dg.DagsterInstance.ephemeral()
        result = definitions.resolve_job_def("refund_payout").execute_in_process(
            instance=instance, run_config={"ops": {"refund_payouts": {"config": {"backoff_seconds": 0.01}}}})
        assert result.success and len(sandbox.ledger()) == 6  # the key reached the provider
    shown.append(serialize_value(instance.get_run_by_id(result.run_id)))
    shown.extend(serialize_value(event) for event in instance.all_logs(result.run_id))
    for text in shown:
        assert sandbox.api_key not in text and PE_SECRET not in text


def test_a_resource_passed_to_the_definitions_replaces_the_environments(home, environment):
    sandbox = RefundProvider(url="http://127.0.0.1:1", key="sandbox-key", executor=PAYOUT_FILE)
    resources = build_definitions(load_settings(home.path), {REFUND_PROVIDER: sandbox}).resources
    assert resources[REFUND_PROVIDER] is sandbox
    assert executor_name(load_settings(home.path), provider=resources[REFUND_PROVIDER]) == PAYOUT_FILE  # not the env's api
