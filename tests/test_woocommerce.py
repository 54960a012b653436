"""A WooCommerce store's orders pulled from its REST API (against the loopback sandbox) land as
canonical CSV, page by page to the last, only what changed since the last pull; a refused key
lands nothing and says which variables to check; a 5xx is retried; a secret is never shown."""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import os
import re
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value

from pagorecon_dagster import cli
from pagorecon_dagster.config import ConfigError, load_settings, parse_config
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.ingestion.loader import ingest_source
from pagorecon_dagster.reconciliation.models import refresh_current_state
from pagorecon_dagster.resources import WOOCOMMERCE, WooCommerceApi, woocommerce_from_environment
from pagorecon_dagster.sandbox.generator import generate
from pagorecon_dagster.sandbox.woocommerce_api import DEMO_STORE, WooCommerceSandbox, woo_order
from pagorecon_dagster.stores import woocommerce
from pagorecon_dagster.stores.woocommerce import (
    OVERLAP,
    STATUSES,
    WooCommerceAuthError,
    WooCommerceClient,
    WooCommerceError,
    mark_path,
    pull_woocommerce_orders,
    read_mark,
)
from pagorecon_dagster.warehouse.duckdb import connect
from tests.conftest import DEFAULT_STORES

KEY, SECRET = "ck_sandbox_0123456789abcdef", "cs_secret_only_in_the_environment_42"
T0 = dt.datetime(2026, 7, 14, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
LANDING = Path("landing/orders/woo")


@pytest.fixture
def shop():
    with WooCommerceSandbox(KEY, SECRET) as sandbox:
        yield sandbox


@pytest.fixture
def woo_home(home, shop):
    home.config(stores=DEFAULT_STORES + [{"id": "woo", "source": "woocommerce_api", "base_url": shop.url}])
    return home


def _client(shop, *, secret=SECRET, sleeps=None, **kwargs):
    credentials = woocommerce.WooCredentials("woo", KEY, secret)
    return WooCommerceClient(shop.url, credentials, sleep=(sleeps.append if sleeps is not None else lambda s: None), **kwargs)


def _pull(home, shop, **kwargs):
    return pull_woocommerce_orders(load_settings(home.path), "woo", client=_client(shop, **kwargs))


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def _order(n: int, minutes: int = 0, **fields):
    return woo_order(n, created=T0 + dt.timedelta(minutes=minutes), transaction_id=f"{n + 10_000_000}", **fields)


def test_every_page_is_pulled_to_the_last(woo_home, shop):
    for n in range(1, 251):
        shop.put(_order(n, minutes=n))

    landed = _pull(woo_home, shop)

    assert [r.query["page"] for r in shop.requests] == ["1", "2", "3"]
    assert {r.query["per_page"] for r in shop.requests} == {"100"}
    assert {(r.query["orderby"], r.query["order"]) for r in shop.requests} == {("modified", "asc")}
    assert "modified_after" not in shop.requests[0].query   # the first pull takes every order
    assert landed.parent == woo_home.path / LANDING and landed.name.startswith("woo_20260714T")
    rows = _rows(landed)
    assert [r["order_id"] for r in rows] == [str(n) for n in range(1, 251)]
    assert rows[0] == {**rows[0], "created_at": "2026-07-14T15:01:00Z", "status": "pending", "currency": "PEN",
                       "total": "100.00", "discount": "0.00", "payment_method": "PagoEfectivo", "cip": "10000001",
                       "woo_status": "on-hold"}
    assert read_mark(load_settings(woo_home.path), "woo").modified_after == dt.datetime(2026, 7, 14, 19, 10, tzinfo=dt.timezone.utc)


def test_a_later_pull_restates_an_edited_order_and_reconciliation_follows(woo_home, shop):
    shop.put(_order(1, total="80.00"))
    shop.put(_order(2, total="50.00"))
    first = _pull(woo_home, shop)
    woo_home.statements("10000001,1,op1,paid,PEN,80.00,,,2026-07-14T10:05:00-05:00,,2026-07-14T11:00:00-05:00,,,,", store="woo")
    woo_home.run("2026-07-14", "2026-07-14", stores=["woo"])
    assert [(i["order_id"], i["status"]) for i in woo_home.items("woo")] == [("1", "MATCHED"), ("2", "AWAITING_PAYMENT")]

    # the shop cancels order 1 after it was paid; order 2 is untouched
    shop.edit(1, T0 + dt.timedelta(hours=3), status="cancelled")
    shop.requests.clear()
    second = _pull(woo_home, shop)

    asked = dt.datetime.fromisoformat(shop.requests[0].query["modified_after"]).replace(tzinfo=dt.timezone.utc)
    assert asked == dt.datetime(2026, 7, 14, 15, 0, tzinfo=dt.timezone.utc) - OVERLAP
    assert second != first and [(r["order_id"], r["status"]) for r in _rows(second)] == [("1", "cancelled")]
    woo_home.run("2026-07-14", "2026-07-14", stores=["woo"])
    assert [(i["order_id"], i["status"]) for i in woo_home.items("woo")] == [("1", "PAID_CANCELLED_ORDER"), ("2", "AWAITING_PAYMENT")]

    # nothing changed since: nothing new lands, though the overlap asks for order 1 again
    assert _pull(woo_home, shop) is None
    assert sorted(p.name for p in (woo_home.path / LANDING).iterdir()) == sorted([first.name, second.name])


def test_an_order_edited_while_the_pages_are_read_is_not_lost(woo_home, shop):
    for n in range(1, 5):
        shop.put(_order(n, minutes=n))
    # after page 1 (orders 1, 2) the shop edits order 1: it moves to the end and order 3 slides onto page 1
    shop.between_pages = lambda page: page == 1 and shop.edit(1, T0 + dt.timedelta(hours=1), status="processing")

    landed = _pull(woo_home, shop, per_page=2)
    assert [(r["order_id"], r["woo_status"]) for r in _rows(landed)] == [("2", "on-hold"), ("4", "on-hold"), ("1", "processing")]

    shop.between_pages = None
    again = _pull(woo_home, shop, per_page=2)
    assert "3" in [r["order_id"] for r in _rows(again)]   # the mark stayed early enough to find it


def test_a_refused_key_is_a_clear_error_and_nothing_lands(woo_home, shop, caplog):
    shop.put(_order(1))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(WooCommerceAuthError) as refused:
        _pull(woo_home, shop, secret="cs_wrong_secret_value")

    message = str(refused.value)
    assert "HTTP 401" in message and "Consumer secret is invalid" in message
    assert "PAGORECON_WOO_KEY_WOO and PAGORECON_WOO_SECRET_WOO" in message
    assert "cs_wrong_secret_value" not in message and KEY not in message
    assert len(shop.requests) == 1   # refused is refused: not retried
    assert not (woo_home.path / LANDING).exists() and not mark_path(load_settings(woo_home.path), "woo").exists()


def test_a_5xx_is_retried_with_backoff(woo_home, shop):
    shop.put(_order(1))
    shop.fail_next(2, status=503)
    sleeps = []
    assert _rows(_pull(woo_home, shop, sleeps=sleeps))[0]["order_id"] == "1"
    assert sleeps == [0.5, 1.0] and len(shop.requests) == 3

    shop.fail_next(1, status=429, retry_after="3")
    shop.edit(1, T0 + dt.timedelta(hours=1), status="completed")
    sleeps.clear()
    _pull(woo_home, shop, sleeps=sleeps)
    assert sleeps == [3.0]   # a rate limit waits as long as the shop asks


def test_a_shop_down_for_good_fails_after_the_last_attempt_and_lands_nothing(woo_home, shop):
    shop.put(_order(1))
    shop.fail_next(4, status=502)
    with pytest.raises(WooCommerceError, match=r"failed after 4 attempts: HTTP 502"):
        _pull(woo_home, shop)
    assert not (woo_home.path / LANDING).exists()


@pytest.mark.parametrize(("woo_status", "canonical"), [
    ("pending", "pending"), ("on-hold", "pending"), ("failed", "pending"), ("processing", "paid"),
    ("completed", "paid"), ("cancelled", "cancelled"), ("refunded", "refunded"),
])
def test_status_mapping(woo_status, canonical):
    store = parse_config({"stores": [{"id": "woo", "source": "woocommerce_api", "base_url": "https://shop.pe"}]}).stores[0]
    assert woocommerce.canonical_row(_order(1, status=woo_status), store)[2] == canonical


def test_the_status_table_in_the_docs_is_the_codes():
    doc = (Path(__file__).parents[1] / "docs" / "landing-formats.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Connecting a WooCommerce store"):]
    table = dict(re.findall(r"^\| `([a-z-]+)` \| `([a-z]+)` \|", section, re.MULTILINE))
    assert table == STATUSES


def test_the_configured_words_decide_which_orders_are_pagoefectivo(woo_home, shop):
    store = parse_config({"stores": [{"id": "woo", "source": "woocommerce_api", "base_url": "https://shop.pe",
                                      "pagoefectivo_match": ["pe_cash"]}]}).stores[0]
    ours = _order(1, payment_method="pe_cash", payment_method_title="Pago en agentes")
    card = _order(2, payment_method="pagoefectivo_card", payment_method_title="Tarjeta (PagoEfectivo)")
    rows = [woocommerce.canonical_row(o, store) for o in (ours, card)]
    assert [r[6] for r in rows] == ["PagoEfectivo (Pago en agentes)", "Tarjeta (other)"]
    default = parse_config({"stores": [{"id": "woo", "source": "woocommerce_api", "base_url": "https://shop.pe"}]}).stores[0]
    assert [woocommerce.is_pagoefectivo(o, default) for o in (ours, card)] == [False, True]


def test_secrets_never_show(woo_home, shop, caplog, monkeypatch):
    monkeypatch.setenv("PAGORECON_WOO_KEY_WOO", KEY)
    monkeypatch.setenv("PAGORECON_WOO_SECRET_WOO", SECRET)
    caplog.set_level(logging.DEBUG)
    resource = woocommerce_from_environment()
    shop.put(_order(1))
    shop.fail_next(1, status=500)
    client = WooCommerceClient(shop.url, resource.credentials_for("woo"), sleep=lambda s: None)
    landed = pull_woocommerce_orders(load_settings(woo_home.path), "woo", client=client)

    assert landed is not None and "store woo" in caplog.text
    shown = [caplog.text, repr(resource), repr(client), repr(resource.credentials_for("woo")), landed.read_text(),
             mark_path(load_settings(woo_home.path), "woo").read_text()]
    assert not [text for text in shown if KEY in text or SECRET in text]
    assert shop.requests[-1].headers["authorization"].startswith("Basic ")   # sent only as basic auth
    assert all(SECRET not in str(r.query) for r in shop.requests)


def test_the_resource_reads_the_stores_variables_and_names_the_missing_ones(monkeypatch):
    monkeypatch.setenv("PAGORECON_WOO_KEY_WOO", KEY)
    monkeypatch.delenv("PAGORECON_WOO_SECRET_WOO", raising=False)
    with pytest.raises(woocommerce.MissingWooCredentials, match=r"'woo': WooCommerce credentials not set: PAGORECON_WOO_SECRET_WOO$"):
        woocommerce_from_environment().credentials_for("woo")
    assert WooCommerceApi(variables={"PAGORECON_WOO_KEY_WOO": KEY, "PAGORECON_WOO_SECRET_WOO": SECRET}).credentials_for("woo").consumer_secret == SECRET


def test_the_cli_pulls_with_the_environments_key(woo_home, shop, monkeypatch, capsys):
    monkeypatch.setenv("PAGORECON_WOO_KEY_WOO", KEY)
    monkeypatch.setenv("PAGORECON_WOO_SECRET_WOO", SECRET)
    shop.put(_order(1))
    assert cli.main(["--home", str(woo_home.path), "orders", "pull", "--store", "woo"]) == cli.EXIT_OK
    assert capsys.readouterr().out.startswith("woo: landing/orders/woo/woo_")

    monkeypatch.setenv("PAGORECON_WOO_SECRET_WOO", "cs_revoked")
    shop.edit(1, T0 + dt.timedelta(hours=1), status="completed")
    assert cli.main(["--home", str(woo_home.path), "orders", "pull"]) == cli.EXIT_RUN_FAILED
    assert "refused the consumer key and secret" in capsys.readouterr().err
    assert cli.main(["--home", str(woo_home.path), "orders", "pull", "--store", "shop"]) == cli.EXIT_USAGE


@pytest.mark.parametrize(("store", "refusal"), [
    ({"id": "woo", "source": "woocommerce_api"}, "`stores[0].base_url` is required for a woocommerce_api store"),
    ({"id": "woo", "source": "woocommerce_api", "base_url": "http://shop.example.pe"}, "`stores[0].base_url` must be the shop's https:// address"),
    ({"id": "woo", "source": "woocommerce_api", "base_url": "https://shop.pe", "order_format": "shopify"},
     "`stores[0].order_format` must be canonical (or left out) for a woocommerce_api store"),
    ({"id": "woo", "order_format": "canonical", "base_url": "https://shop.pe"}, "`stores[0].base_url` is only for a store with `source: woocommerce_api`"),
    ({"id": "woo", "source": "woocommerce_api", "base_url": "https://shop.pe", "pagoefectivo_match": []},
     "`stores[0].pagoefectivo_match` must be a non-empty list"),
    ({"id": "woo", "source": "magento", "order_format": "canonical"}, "`stores[0].source` must be one of files, shopify_api, woocommerce_api"),
])
def test_a_bad_woocommerce_store_is_refused_by_key(store, refusal):
    with pytest.raises(ConfigError, match=re.escape(refusal)):
        parse_config({"stores": [store]})


def test_the_demo_store_on_woocommerce_lands_the_orders_its_export_had(tmp_path, monkeypatch):
    for name in woocommerce.env_names(DEMO_STORE):
        monkeypatch.delenv(name, raising=False)   # the demo needs no key of the operator's
    exported, pulled = tmp_path / "exported", tmp_path / "pulled"
    generate(exported, days=5)
    generate(pulled, days=5)
    cli._demo_woocommerce_store(pulled)

    assert not [name for name in os.environ if name.startswith(woocommerce.KEY_ENV_PREFIX)]   # nor leaves one behind
    assert load_settings(pulled).store(DEMO_STORE).source == "woocommerce_api"
    assert [p.name[:4] for p in (pulled / "landing" / "orders" / DEMO_STORE).iterdir()] == ["woo_"]
    for home in (exported, pulled):
        settings = load_settings(home)
        with connect(settings.lake) as con:
            for kind in ("fx", "orders", "statements"):
                ingest_source(con, settings, kind)
            refresh_current_state(con, settings)
    query = ("SELECT order_id, business_date, status, currency, total_cents, discount_cents, is_pagoefectivo, cip, customer_email"
             " FROM orders WHERE store_id = ? ORDER BY order_id")
    rejected = "SELECT count(*) FROM quarantine WHERE store_id = ? AND source = 'orders'"
    with connect(load_settings(exported).lake) as a, connect(load_settings(pulled).lake) as b:
        assert b.execute(query, [DEMO_STORE]).fetchall() == a.execute(query, [DEMO_STORE]).fetchall()
        assert len(a.execute(query, [DEMO_STORE]).fetchall()) > 20
        assert b.execute(rejected, [DEMO_STORE]).fetchone() == a.execute(rejected, [DEMO_STORE]).fetchone()


def test_a_woocommerce_store_written_back_reads_the_same():
    config = parse_config({"stores": [{"id": "woo", "source": "woocommerce_api", "base_url": "https://shop.pe/tienda",
                                       "pagoefectivo_match": ["PE_Cash"]}, {"id": "shop", "order_format": "canonical"}]})
    assert parse_config(config.model_dump(mode="json", by_alias=True)) == config
    assert config.stores[0].pagoefectivo_match == ("pe_cash",) and config.stores[1].source == "files"


def test_the_definitions_hold_the_keys_as_env_vars_never_their_values(woo_home, monkeypatch):
    monkeypatch.setenv("PAGORECON_WOO_KEY_WOO", KEY)
    monkeypatch.setenv("PAGORECON_WOO_SECRET_WOO", SECRET)
    definitions = build_definitions(load_settings(woo_home.path))
    fields = definitions.resources[WOOCOMMERCE].variables
    assert {name: (type(f), f.env_var_name) for name, f in fields.items()} == {
        "PAGORECON_WOO_KEY_WOO": (dg.EnvVar, "PAGORECON_WOO_KEY_WOO"),
        "PAGORECON_WOO_SECRET_WOO": (dg.EnvVar, "PAGORECON_WOO_SECRET_WOO")}
    snap = serialize_value(RepositorySnap.from_def(definitions.get_repository_def()))
    assert KEY not in snap and SECRET not in snap
    monkeypatch.setenv("PAGORECON_WOO_SECRET_WOO", "cs_rotated")   # read where it is used
    assert definitions.resources[WOOCOMMERCE].credentials_for("woo").consumer_secret == "cs_rotated"
