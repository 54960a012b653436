"""A `source: shopify_api` store: its orders are pulled from the Shopify GraphQL Admin API (a
sandbox on loopback that speaks the real reply shapes) into landing/orders/<store>/ in the
export's columns, and then reconcile like any dropped Shopify export."""

from __future__ import annotations

import datetime as dt
import logging

import dagster as dg
import pytest
import yaml

from conftest import DEFAULT_STORES
from pagorecon_dagster.cli import main
from pagorecon_dagster.config import ConfigError, load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.resources import SHOPIFY, ShopifyApi, shopify_from_environment
from pagorecon_dagster.sandbox.shopify_api import SandboxShop, ShopifySandbox, order_node
from pagorecon_dagster.stores.shopify import (
    SHOPIFY_PULL_JOB,
    ShopifyAuthError,
    ShopifyClient,
    last_pull,
    pull_store_orders,
)

DOMAIN, TOKEN = "andes-shop.myshopify.com", "shpat_only_in_the_environment_1234"
T0 = dt.datetime(2026, 7, 14, 15, 0, tzinfo=dt.timezone.utc)   # 10:00 Lima


class FakeClock:
    """The sandbox's bucket and the client's sleep on one clock: throttling waits cost no time."""

    def __init__(self):
        self.now, self.slept = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def node(n: int, *, minutes: int = 0, status: str = "PENDING", total: int = 5990, **extra):
    return order_node(5_500_000_000 + n, f"#{1000 + n}", created_at=T0 + dt.timedelta(minutes=n),
                      updated_at=T0 + dt.timedelta(minutes=n + minutes), financial_status=status, total_cents=total,
                      payment_id=f"c3100{n}.1", email=f"cliente{n}@example.pe", **extra)


@pytest.fixture
def api_home(home):
    home.config(stores=DEFAULT_STORES + [{"id": "andes", "order_format": "shopify", "source": "shopify_api",
                                          "shop_domain": DOMAIN, "auto_refund_limit": "150.00"}])
    return home


def api(sandbox: ShopifySandbox, token: str = TOKEN) -> ShopifyApi:
    return ShopifyApi(tokens={"PAGORECON_SHOPIFY_TOKEN_ANDES": token}, api_url=sandbox.url)


def client(sandbox: ShopifySandbox, clock: FakeClock, **kwargs) -> ShopifyClient:
    return ShopifyClient("andes", sandbox.url, TOKEN, sleep=clock.sleep, backoff_seconds=0.5, **kwargs)


def landed_names(home) -> list[str]:
    folder = home.path / "landing" / "orders" / "andes"
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


def test_a_pull_pages_to_the_last_page_and_reconciles_like_an_export(api_home):
    orders = [node(n) for n in range(1, 8)]
    orders[1] = node(2, status="PAID", total=3000, line_items=[("Chullo", "CHU", 1000, 1), ("Mate", "MAT", 1000, 2)])
    clock = FakeClock()
    with ShopifySandbox([SandboxShop(DOMAIN, TOKEN, orders)], clock=clock) as sandbox:
        path = pull_store_orders(load_settings(api_home.path), "andes", api(sandbox),
                                 client=client(sandbox, clock, page_size=3))
        cursors = [r.json()["variables"]["after"] for r in sandbox.requests]
    assert len(cursors) == 3 and cursors[0] is None and None not in cursors[1:]   # 3 + 3 + 1 orders
    assert path.parent == api_home.path / "landing" / "orders" / "andes" and path.suffix == ".csv"
    assert path.read_bytes().count(b"\r\n") == 1 + 8   # header, 7 orders, a second line item of #1002
    assert last_pull(load_settings(api_home.path), "andes") == T0 + dt.timedelta(minutes=7)

    api_home.statements("90000002,1002,,paid,PEN,30.00,,,2026-07-14T10:05:00-05:00,,2026-07-14T11:00:00-05:00,BCP,DNI,12345678,\n",
                        store="andes")
    api_home.run("2026-07-14", "2026-07-14", stores=["andes"])
    items = {i["order_id"]: i["status"] for i in api_home.items("andes")}
    assert items["#1002"] == "MATCHED" and items["#1001"] == "AWAITING_PAYMENT" and len(items) == 7
    line_items = api_home.query("SELECT line_items FROM orders WHERE store_id = 'andes' AND order_id = '#1002'")
    assert line_items == [{"line_items": 2}]


def test_throttling_waits_for_the_bucket_to_refill(api_home):
    clock = FakeClock()
    shop = SandboxShop(DOMAIN, TOKEN, [node(n) for n in range(1, 5)])
    with ShopifySandbox([shop], bucket_size=100.0, restore_rate=10.0, clock=clock) as sandbox:
        sandbox.drain(to=2.0)   # the next query costs 2 + 2 = 4 points: THROTTLED first
        found = list(client(sandbox, clock, page_size=2).orders_updated_since(T0))
        replies = len(sandbox.requests)
    assert [o["name"] for o in found] == ["#1001", "#1002", "#1003", "#1004"]
    assert clock.slept[0] == pytest.approx((4 - 2) / 10.0)   # (requestedQueryCost - currentlyAvailable) / restoreRate
    assert replies == 3   # one THROTTLED reply, then both pages


def test_a_bucket_too_low_for_the_next_page_is_waited_out_before_asking(api_home):
    clock = FakeClock()
    shop = SandboxShop(DOMAIN, TOKEN, [node(n) for n in range(1, 7)])
    # each page costs 2 + 3 = 5 of a 6-point bucket: after the first page only 1 is left
    with ShopifySandbox([shop], bucket_size=6.0, restore_rate=1.0, clock=clock) as sandbox:
        found = list(client(sandbox, clock, page_size=3).orders_updated_since(T0))
        asked = len(sandbox.requests)
    assert len(found) == 6 and asked == 2   # never THROTTLED: the client waited first
    assert clock.slept == [pytest.approx(4.0)]   # (5 - 1) / 1, and no wait after the last page


def test_a_5xx_is_retried_with_backoff(api_home):
    clock = FakeClock()
    with ShopifySandbox([SandboxShop(DOMAIN, TOKEN, [node(1)])], clock=clock) as sandbox:
        sandbox.fail_next(2, status=503)
        path = pull_store_orders(load_settings(api_home.path), "andes", api(sandbox), client=client(sandbox, clock))
        attempts = len(sandbox.requests)
    assert attempts == 3 and clock.slept == [0.5, 1.0]
    assert "#1001" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("status_token, scope", [("wrong-token", True), (TOKEN, False)])
def test_an_auth_failure_names_the_store_and_lands_nothing(api_home, status_token, scope):
    settings = load_settings(api_home.path)
    with ShopifySandbox([SandboxShop(DOMAIN, TOKEN, [node(1)], scope_granted=scope)]) as sandbox:
        with pytest.raises(ShopifyAuthError) as refused:
            pull_store_orders(settings, "andes", api(sandbox, status_token))
    message = str(refused.value)
    assert "'andes'" in message and "PAGORECON_SHOPIFY_TOKEN_ANDES" in message and "nothing was landed" in message
    assert status_token not in message
    assert landed_names(api_home) == [] and last_pull(settings, "andes") is None


def test_a_missing_token_names_its_variable(api_home):
    with pytest.raises(ConfigError, match="PAGORECON_SHOPIFY_TOKEN_ANDES is not set"):
        pull_store_orders(load_settings(api_home.path), "andes", ShopifyApi())


def test_a_later_pull_restates_an_edited_and_a_cancelled_order(api_home):
    settings = load_settings(api_home.path)
    shop = SandboxShop(DOMAIN, TOKEN, [node(1), node(2), node(3)])
    api_home.statements("90000001,1001,,paid,PEN,59.90,,,2026-07-14T10:05:00-05:00,,2026-07-14T11:00:00-05:00,BCP,DNI,12345678,\n"
                        "90000002,1002,,paid,PEN,59.90,,,2026-07-14T10:05:00-05:00,,2026-07-14T11:00:00-05:00,BCP,DNI,12345678,\n",
                        store="andes")
    with ShopifySandbox([shop]) as sandbox:
        first = pull_store_orders(settings, "andes", api(sandbox))
        api_home.run("2026-07-14", "2026-07-14", stores=["andes"])
        assert {i["order_id"]: i["status"] for i in api_home.items("andes")} == {
            "#1001": "MATCHED", "#1002": "MATCHED", "#1003": "AWAITING_PAYMENT"}
        sandbox.put_order(DOMAIN, node(1, minutes=120, status="PAID", total=6990))    # edited: total raised
        sandbox.put_order(DOMAIN, node(2, minutes=121, status="VOIDED", cancelled_at=T0 + dt.timedelta(hours=2)))
        second = pull_store_orders(settings, "andes", api(sandbox))
        asked = sandbox.requests[-1].json()["variables"]["query"]
        nothing = pull_store_orders(settings, "andes", api(sandbox))   # nothing changed since
    assert asked == "updated_at:>='2026-07-14T15:03:00Z'"   # since the first pull's high-water mark
    assert second != first and "#1003" not in second.read_text(encoding="utf-8")
    assert nothing is None and len(landed_names(api_home)) == 2
    api_home.run("2026-07-14", "2026-07-14", stores=["andes"])
    items = {i["order_id"]: i for i in api_home.items("andes")}
    assert {order: item["status"] for order, item in items.items()} == {
        "#1001": "AMOUNT_MISMATCH", "#1002": "PAID_CANCELLED_ORDER", "#1003": "AWAITING_PAYMENT"}
    assert items["#1001"]["difference_cents"] == -1000


def test_the_token_is_never_logged_nor_in_the_resource_repr(api_home, caplog, monkeypatch, capsys):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("PAGORECON_SHOPIFY_TOKEN_ANDES", TOKEN)
    with ShopifySandbox([SandboxShop(DOMAIN, TOKEN, [node(1)])]) as sandbox:
        sandbox.fail_next(1, status=500)
        monkeypatch.setenv("PAGORECON_SHOPIFY_API_URL", sandbox.url)
        resource = shopify_from_environment()
        assert isinstance(resource.tokens["PAGORECON_SHOPIFY_TOKEN_ANDES"], dg.EnvVar)
        assert main(["--home", str(api_home.path), "orders", "pull", "--store", "andes"]) == 0
        sent = sandbox.requests[-1].headers["x-shopify-access-token"]
    out = capsys.readouterr()
    assert sent == TOKEN and "landing/orders/andes/shopify_api_" in out.out
    assert "retrying" in caplog.text
    assert TOKEN not in caplog.text + out.out + out.err + repr(resource)


def test_orders_pull_refuses_a_store_that_is_not_on_the_api(api_home, capsys):
    assert main(["--home", str(api_home.path), "orders", "pull", "--store", "shopi"]) == 2
    assert "shopi: not a store with `source: shopify_api`" in capsys.readouterr().err


def test_the_pull_job_is_in_the_definitions_and_fails_naming_the_store(api_home):
    settings = load_settings(api_home.path)
    with ShopifySandbox([SandboxShop(DOMAIN, TOKEN, [node(1)])]) as sandbox:
        job = build_definitions(settings, {SHOPIFY: api(sandbox)}).resolve_job_def(SHOPIFY_PULL_JOB)
        assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success
        refused = build_definitions(settings, {SHOPIFY: api(sandbox, "wrong")}).resolve_job_def(SHOPIFY_PULL_JOB)
        result = refused.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert len(landed_names(api_home)) == 1
    assert not result.success and "store 'andes'" in str(result.all_events)


@pytest.mark.parametrize("store, message", [
    ({"source": "shopify_api"}, "`stores[0].shop_domain` is required when `source` is shopify_api"),
    ({"source": "shopify_api", "shop_domain": "andes.com"}, "`stores[0].shop_domain` must be the shop's myshopify.com domain"),
    ({"shop_domain": DOMAIN}, "`stores[0].shop_domain` is only read when `source` is shopify_api"),
    ({"source": "shopify_api", "shop_domain": DOMAIN, "order_format": "canonical"},
     "`stores[0].order_format` must be shopify when `source` is shopify_api"),
])
def test_a_bad_shopify_store_is_refused_by_key(home, store, message):
    (home.path / "pagorecon.yaml").write_text(yaml.safe_dump(
        {"stores": [{"id": "andes", "order_format": "shopify", **store}]}), encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("`", ".").replace("[", r"\[").replace("]", r"\]")):
        load_settings(home.path)
