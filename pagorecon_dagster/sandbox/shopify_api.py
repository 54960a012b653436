"""A Shopify GraphQL Admin API that runs on loopback, for tests and the demo.

It answers `POST /admin/api/<version>/graphql.json` with the real reply shapes: the `orders`
connection (`nodes`, `pageInfo{hasNextPage endCursor}`, keyset cursors, the `updated_at:>=`
search filter, oldest update first), the cost extension (`extensions.cost` with `throttleStatus`
`maximumAvailable`, `currentlyAvailable`, `restoreRate`) and a leaky bucket that answers
`THROTTLED` when a query costs more than is available, `401` for an unknown access token, `403`
for a shop whose app lacks the scope, and injected 5xx. The bucket runs on `clock`, so a test
that injects the client's sleep can advance both. Every request is recorded.

The query cost is the sandbox's own simple formula (2 + `first`); Shopify's is richer."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pagorecon_dagster.sandbox.http import Fault, RecordedRequest, Reply, SandboxApi, json_reply
from pagorecon_dagster.stores.shopify import GRAPHQL_PATH, TOKEN_HEADER

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
MISSING_SCOPE = "[API] This action requires merchant approval for read_orders scope."
_SINCE_RE = re.compile(r"updated_at:>=\s*'?([0-9TZ:+.\-]+)'?")


@dataclass
class SandboxShop:
    """One shop and the orders it holds, as GraphQL `Order` nodes (see `order_node`)."""

    domain: str
    token: str = field(repr=False)
    orders: list[dict[str, Any]] = field(default_factory=list)
    scope_granted: bool = True   # False: every call answers 403


def _amount(cents: int) -> str:
    """Shopify's Decimal scalar: `59.9`, `100.0`."""
    text = f"{cents // 100}.{cents % 100:02d}"
    return text[:-1] if text.endswith("0") else text


def _money_set(cents: int, currency: str) -> dict[str, Any]:
    return {"shopMoney": {"amount": _amount(cents), "currencyCode": currency}}


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def order_node(
    legacy_id: int,
    name: str,
    *,
    created_at: dt.datetime,
    total_cents: int,
    updated_at: dt.datetime | None = None,
    financial_status: str = "PENDING",
    currency: str = "PEN",
    discount_cents: int = 0,
    refunded_cents: int = 0,
    gateway: str = "PagoEfectivo",
    payment_id: str = "",
    email: str = "",
    cancelled_at: dt.datetime | None = None,
    line_items: Iterable[tuple[str, str, int, int]] = (),   # name, sku, unit céntimos, quantity
) -> dict[str, Any]:
    """An `Order` node with the fields pagorecon's query asks for, as Shopify returns them."""
    lines = list(line_items) or [("Item", "", total_cents, 1)]
    return {
        "id": f"gid://shopify/Order/{legacy_id}",
        "legacyResourceId": str(legacy_id),
        "name": name,
        "email": email or None,
        "createdAt": _iso(created_at),
        "updatedAt": _iso(updated_at or created_at),
        "cancelledAt": _iso(cancelled_at) if cancelled_at else None,
        "displayFinancialStatus": financial_status,
        "currencyCode": currency,
        "paymentGatewayNames": [gateway] if gateway else [],
        "totalPriceSet": _money_set(total_cents, currency),
        "totalDiscountsSet": _money_set(discount_cents, currency),
        "totalRefundedSet": _money_set(refunded_cents, currency),
        "transactions": [{"paymentId": payment_id, "gateway": gateway}] if payment_id else [],
        "lineItems": {"nodes": [
            {"name": n, "sku": sku or None, "quantity": qty, "originalUnitPriceSet": _money_set(unit, currency)}
            for n, sku, unit, qty in lines
        ]},
    }


def _cursor(node: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(f"{node['updatedAt']}|{node['id']}".encode()).decode()


def _key(node: dict[str, Any]) -> tuple[str, str]:
    return node["updatedAt"], node["id"]


class ShopifySandbox(SandboxApi):
    name = server_version = "shopify-sandbox"
    fail_status = 502

    def __init__(
        self,
        shops: Iterable[SandboxShop],
        *,
        bucket_size: float = 1000.0,
        restore_rate: float = 50.0,
        clock: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(host=host, port=port)
        self.shops = {s.token: s for s in shops}
        self.bucket_size, self.restore_rate, self.clock = bucket_size, restore_rate, clock
        self._available, self._refilled = bucket_size, clock()

    # --- steering it from a test (and `fail_next`) ------------------------------------------------

    def drain(self, to: float = 0.0) -> None:
        """Empty the bucket to `to` points, as other apps of the shop would."""
        with self._lock:
            self._available, self._refilled = to, self.clock()

    def put_order(self, domain: str, node: dict[str, Any]) -> None:
        """Add an order, or replace the one with the same id (an edit: give it a later updatedAt)."""
        shop = next(s for s in self.shops.values() if s.domain == domain)
        with self._lock:
            shop.orders = [o for o in shop.orders if o["id"] != node["id"]] + [node]

    # --- what Shopify answers -------------------------------------------------------------------

    def fault_reply(self, fault: Fault) -> Reply:
        return json_reply(fault.status or self.fail_status, {"errors": "Internal Server Error"})

    def answer(self, request: RecordedRequest) -> Reply:
        return json_reply(*self._answer(request))

    def _answer(self, request: RecordedRequest) -> tuple[int, Any]:
        if request.method != "POST" or request.path != GRAPHQL_PATH:
            return 404, {"errors": "Not Found"}
        shop = self.shops.get(request.headers.get(TOKEN_HEADER.lower(), ""))
        if shop is None:
            return 401, {"errors": INVALID_TOKEN}
        if not shop.scope_granted:
            return 403, {"errors": MISSING_SCOPE}
        query = request.json()
        variables = (query.get("variables") or {}) if isinstance(query, dict) else {}
        if not isinstance(query, dict) or "orders(" not in str(query.get("query")):
            return 200, {"errors": [{"message": "sandbox: only the orders query is served",
                                     "extensions": {"code": "BAD_REQUEST"}}]}
        first = int(variables.get("first") or 50)
        requested = 2 + first
        with self._lock:
            now = self.clock()
            self._available = min(self.bucket_size, self._available + (now - self._refilled) * self.restore_rate)
            self._refilled = now
            if requested > self._available:
                return 200, {"errors": [{"message": "Throttled", "extensions": {
                    "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                    "extensions": {"cost": self._cost(requested, None)}}
            orders = self._orders(shop, variables, first)
            actual = 2 + len(orders["nodes"])
            self._available -= actual
            return 200, {"data": {"orders": orders}, "extensions": {"cost": self._cost(requested, actual)}}

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {"requestedQueryCost": requested, "actualQueryCost": actual,
                "throttleStatus": {"maximumAvailable": self.bucket_size, "currentlyAvailable": int(self._available),
                                   "restoreRate": self.restore_rate}}

    def _orders(self, shop: SandboxShop, variables: dict[str, Any], first: int) -> dict[str, Any]:
        found = sorted(shop.orders, key=_key)
        since = _SINCE_RE.search(str(variables.get("query") or ""))
        if since:
            floor = _iso(dt.datetime.fromisoformat(since.group(1).replace("Z", "+00:00")))
            found = [o for o in found if o["updatedAt"] >= floor]
        if variables.get("after"):
            after = tuple(base64.urlsafe_b64decode(str(variables["after"])).decode().split("|", 1))
            found = [o for o in found if _key(o) > after]
        page = found[:first]
        return {"nodes": page, "pageInfo": {"hasNextPage": len(found) > first,
                                            "endCursor": _cursor(page[-1]) if page else None}}


# --- the demo's Shopify API store ------------------------------------------------------------------

DEMO_STORE = {"id": "trujillo_shop", "name": "Trujillo Shop", "order_format": "shopify", "reference_field": "name",
              "auto_refund_limit": "150.00", "source": "shopify_api", "shop_domain": "trujillo-shop.myshopify.com"}
DEMO_TOKEN = "shpat_sandbox_demo_token"


@dataclass(frozen=True)
class DemoShop:
    shop: SandboxShop
    expected: dict[str, int]   # the statuses its orders and CIPs are planted to reconcile to


def add_demo_shop(home: Path, *, stores: int, days: int, start: dt.date, seed: int) -> DemoShop:
    """Plan one more Shopify store with the demo's calendar and rates, add it to pagorecon.yaml as a
    `source: shopify_api` store, write its PagoEfectivo statements, and return its orders as the
    sandbox shop will serve them (each in its latest state). The demo's other stores are untouched."""
    from pagorecon_dagster.sandbox import generator
    from pagorecon_dagster.stores.shopify import state_path

    state_path(home, DEMO_STORE["id"]).unlink(missing_ok=True)   # a demo run again pulls everything again
    count = stores + 1
    while not generator.store_specs(count)[-1].shopify:
        count += 1
    plan = generator.plan_sandbox(stores=count, days=days, start=start, seed=seed, orders_per_day=12, broken_rows=True)
    spec = dataclasses.replace(plan.stores[-1].store, id=DEMO_STORE["id"], name=DEMO_STORE["name"])
    store_plan = generator.StorePlan(spec, plan.stores[-1].orders, plan.stores[-1].cips)
    generator.write_statements(generator.Writer(home), store_plan, plan.ctx, {})
    config_path = home / "pagorecon.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["stores"].append(dict(DEMO_STORE))
    config_path.write_text("# pagorecon sandbox configuration (written by `pagorecon demo`)\n"
                           + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    orders = [_demo_node(o, generator) for o in store_plan.orders]
    expected: dict[str, int] = {}
    for item in generator.intended(store_plan):
        expected[item.status] = expected.get(item.status, 0) + 1
    return DemoShop(SandboxShop(DEMO_STORE["shop_domain"], DEMO_TOKEN, orders), expected)


def _demo_node(o: Any, generator: Any) -> dict[str, Any]:
    """A planned order in its latest state, with the financial status its export would show."""
    last = len(o.states) - 1
    financial, _, cancelled = generator._shopify_financial(o, last)
    return order_node(
        o.shopify_id, o.ref, created_at=o.created, updated_at=o.states[-1][0], total_cents=o.total,
        financial_status=financial.upper(), currency=o.currency, discount_cents=o.discount,
        refunded_cents=o.refunded if financial in ("refunded", "partially_refunded") else 0, gateway=o.method,
        payment_id=f"c{o.shopify_id // 1000 + 31_000_000_000}.1", email=o.customer.email,
        cancelled_at=o.states[-1][0] if cancelled else None, line_items=[(n, sku, unit, qty) for n, sku, unit, qty in o.lines],
    )
