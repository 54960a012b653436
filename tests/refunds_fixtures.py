"""The scenario every refunds test starts from (loaded with `pytest_plugins`, so its session
fixtures are built once for all refunds test files).

One store `shop` (auto_refund_limit PEN 150.00) reconciled on 2026-07-14 through a real Dagster
run, once per session, then taken in once; each test copies the home it needs and takes it from
there."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import pytest
from conftest import Home

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.refunds.intake import intake
from pagorecon_dagster.warehouse.duckdb import connect, home_lake

NOW = dt.datetime(2026, 7, 20, 15, 0, tzinfo=dt.timezone.utc)  # Monday 10:00 Lima

ORDERS = """\
D1,2026-07-14 09:00:00,paid,PEN,100.00,0.00,PagoEfectivo,,,
C1,2026-07-14 09:00:00,cancelled,PEN,80.00,0.00,PagoEfectivo,,,
O1,2026-07-14 09:00:00,paid,PEN,200.00,0.00,PagoEfectivo,,,
B1,2026-07-14 09:00:00,cancelled,PEN,150.00,0.00,PagoEfectivo,,,
B2,2026-07-14 09:00:00,cancelled,PEN,150.01,0.00,PagoEfectivo,,,
X1,2026-07-14 09:00:00,paid,PEN,60.00,0.00,Visa,,,
U1,2026-07-14 09:00:00,cancelled,USD,50.00,0.00,PagoEfectivo,,,
U2,2026-07-14 09:00:00,cancelled,USD,30.00,0.00,PagoEfectivo,,,
N1,2026-07-14 09:00:00,cancelled,PEN,20.00,0.00,PagoEfectivo,,,
M1,2026-07-14 09:00:00,paid,PEN,100.00,0.00,PagoEfectivo,,,
M2,2026-07-14 09:00:00,paid,PEN,100.00,0.00,PagoEfectivo,,,
P1,2026-07-14 09:00:00,pending,PEN,100.00,0.00,PagoEfectivo,,,
R1,2026-07-14 09:00:00,paid,PEN,100.00,0.00,PagoEfectivo,,,
M3,2026-07-14 09:00:00,paid,PEN,100.00,0.00,PagoEfectivo,,,
M4,2026-07-14 09:00:00,paid,PEN,100.00,0.00,PagoEfectivo,,,
"""


def _cip(cip, ref, amount, doc, *, status="paid", currency="PEN", paid_at="2026-07-14T10:00:00-05:00"):
    payment = paid_at if status in ("paid", "reversed") else ""
    return f"{cip},{ref},,{status},{currency},{amount},,,2026-07-14T09:30:00-05:00,,{payment},BCP,DNI,{doc},\n"


STATEMENTS = "".join([
    _cip("91000001", "D1", "100.00", "41111111"),
    _cip("91000002", "D1", "100.00", "41111111", paid_at="2026-07-14T11:00:00-05:00"),
    _cip("91000003", "C1", "80.00", "42222222"),
    _cip("91000004", "O1", "230.00", "43333333"),
    _cip("91000005", "B1", "150.00", "44444444"),
    _cip("91000010", "B2", "150.01", "48888888"),
    _cip("91000006", "X1", "60.00", "45555555"),
    _cip("91000007", "U1", "50.00", "46666666", currency="USD"),
    _cip("91000008", "U2", "30.00", "47777777", currency="USD"),
    _cip("91000009", "N1", "20.00", ""),
    _cip("92000001", "M1", "100.00", "51111111"),
    _cip("92000002", "M2", "100.00", "52222222"),
    _cip("92000003", "P1", "100.00", "53333333", status="pending"),
    _cip("92000004", "R1", "100.00", "54444444"),
    _cip("92000004", "R1", "100.00", "54444444", status="reversed"),  # later row: the bank reversed it
    _cip("92000005", "M3", "100.00", "55555555"),
    _cip("92000006", "M4", "100.00", "56666666"),
])

REQUEST_HEADER = "refund_id,order_id,cip,amount,currency,reason,requested_at,requested_by,beneficiary_document,beneficiary_account\n"
# (refund_id, order_id, cip, amount, currency, reason, beneficiary_document), filed one a minute in this order.
REQUESTS = [
    ("R-ORDER", "ZZ9", "92000001", "10.00", "PEN", "customer_request", "51111111"),
    ("R-CIP", "M1", "99999999", "10.00", "PEN", "customer_request", "51111111"),
    ("R-NOTFOR", "M1", "92000002", "10.00", "PEN", "customer_request", "52222222"),
    ("R-ABOVEPAID", "M1", "92000001", "100.01", "PEN", "customer_request", "51111111"),
    ("R-NOTPAID", "P1", "92000003", "10.00", "PEN", "customer_request", "53333333"),
    ("R-REVERSED", "R1", "92000004", "10.00", "PEN", "customer_request", "54444444"),
    ("R-CURRENCY", "M1", "92000001", "10.00", "USD", "customer_request", "51111111"),
    ("R-ZERO", "M1", "92000001", "0.00", "PEN", "customer_request", "51111111"),
    ("R-PAYER", "M1", "92000001", "10.00", "PEN", "customer_request", "70000007"),
    ("R-M1-OK", "#m1", "92000001", "100.00", "PEN", "customer_request", "5111-1111"),
    ("R-M3-A", "M3", "92000005", "60.00", "PEN", "customer_request", "55555555"),
    ("R-M3-B", "M3", "92000005", "40.01", "PEN", "damaged", "55555555"),
    ("R-M3-C", "M3", "92000005", "40.00", "PEN", "late_delivery", "55555555"),
    ("R-M4-A", "M4", "92000006", "10.00", "PEN", "customer_request", "56666666"),
    ("R-M4-B", "M4", "92000006", "10.00", "PEN", "customer_request", "56666666"),
    ("R-M4-C", "M4", "92000006", "10.00", "PEN", "damaged", "56666666"),
    ("R-MANY", "M2", "92000001", "10.00", "USD", "wrong_item", "12345678"),
]
ACCOUNT = "00212345678901234567"
# Who may decide refunds, by operating-system account. `ana` filed the requests (as ana@tienda.pe);
# the test process's own account (root) is not listed.
APPROVERS = [
    {"user": "ana", "name": "Ana Torres"},
    {"user": "luis", "name": "Luis Rojas"},
    {"user": "maria", "name": "María Quispe"},
    {"user": "carla", "name": "Carla Díaz", "approval_limit": "50.00"},
]


def requests_csv() -> str:
    lines = [
        f"{rid},{order},{cip},{amount},{cur},{reason},2026-07-15 09:{i:02d}:00,ana@tienda.pe,{doc},{ACCOUNT}\n"
        for i, (rid, order, cip, amount, cur, reason, doc) in enumerate(REQUESTS)
    ]
    return REQUEST_HEADER + "".join(lines)


def scenario_home(path: Path, **config) -> Home:
    """A new home at `path` with the scenario's landing files (`config`: more pagorecon.yaml)."""
    home = Home(path)
    home.path.mkdir()
    home.config(stores=[{"id": "shop", "name": "Canonical Shop", "order_format": "canonical",
                         "reference_field": "order_id", "auto_refund_limit": "150.00"}],
                approvers=APPROVERS, **config)
    home.orders(ORDERS)
    home.statements(STATEMENTS)
    home.drop("fx/sbs.csv", "date,currency,buy,sell\n2026-07-13,USD,3.740,3.745\n")
    home.drop("refunds/shop/requests.csv", requests_csv())
    return home


def reconcile(home: Home) -> None:
    """One real run of the main job over the scenario's day."""
    home.run("2026-07-14", "2026-07-14", without=["refunds"])  # the tests take refunds in at NOW


def take_in(home: Home) -> None:
    """Every refund created, checked and decided at NOW."""
    with connect(home_lake(home.path)) as con:
        intake(con, load_settings(home.path), now=NOW)


@pytest.fixture(scope="session")
def refunds_reconciled_template(tmp_path_factory) -> Path:
    """The scenario home after one real run of the main job (no refunds taken in yet)."""
    home = scenario_home(tmp_path_factory.mktemp("refunds") / "home")
    reconcile(home)
    return home.path


def copy_home(source: Path, target: Path) -> Home:
    shutil.copytree(source, target)
    return Home(target)


@pytest.fixture
def refunds_reconciled(refunds_reconciled_template, tmp_path) -> Home:
    """A private copy of the reconciled scenario."""
    return copy_home(refunds_reconciled_template, tmp_path / "home")


@pytest.fixture(scope="session")
def taken_in_template(refunds_reconciled_template, tmp_path_factory) -> Path:
    """The scenario after the intake: every refund created, checked and decided at NOW."""
    home = copy_home(refunds_reconciled_template, tmp_path_factory.mktemp("refunds-taken-in") / "home")
    take_in(home)
    return home.path


@pytest.fixture
def taken_in_readonly(taken_in_template) -> Home:
    """The intake's result, shared: for tests that only read."""
    return Home(taken_in_template)


@pytest.fixture
def taken_in(taken_in_template, tmp_path) -> Home:
    """A private copy of the intake's result."""
    return copy_home(taken_in_template, tmp_path / "home")


def refunds_by_id(home: Home) -> dict[str, dict]:
    return {r["refund_id"]: r for r in home.query("SELECT * FROM refunds ORDER BY refund_id")}


def materialize(home: Home, *asset_names: str, partition: str | None = None) -> None:
    """Materialize just these assets of the real definitions (faster than the whole main job);
    their `pagorecon` resource is already bound to this home."""
    definitions = build_definitions(load_settings(home.path))
    assets = [definitions.resolve_assets_def(name) for name in asset_names]
    result = dg.materialize(assets, partition_key=partition, instance=dg.DagsterInstance.ephemeral())
    assert result.success
