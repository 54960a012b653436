"""Orders pulled from the Shopify GraphQL Admin API into `landing/orders/<store_id>/`, written in
the columns of Shopify's own "Export orders" CSV so ingestion, re-drops and restatements behave as
for a file dropped by hand (docs/landing-formats.md, Connecting a Shopify store).

A pull asks for the orders updated since the store's last pull (`updated_at:>=` the high-water
mark, so edits and cancellations come back), page by page (`pageInfo{hasNextPage endCursor}`),
honouring Shopify's cost-based throttling: a `THROTTLED` reply, or a bucket too low for the next
page, waits until `throttleStatus` says the cost is restored. A 5xx, a timeout or a dropped
connection is retried with backoff; a 401/403 stops the store's pull with nothing landed.

The high-water mark is the largest `updatedAt` Shopify returned (Shopify's clock, never ours),
kept in `$PAGORECON_HOME/state/shopify/<store_id>.json` and moved only once the file is in place.
The access token is sent in `X-Shopify-Access-Token` and nowhere else: never logged or raised."""
# No `from __future__ import annotations`: Dagster reads the op's config class from its annotation.

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import requests

from pagorecon_dagster.config import ConfigError, Settings, StoreConfig
from pagorecon_dagster.core.http import RetriesExhausted, send_with_retries
from pagorecon_dagster.core.masking import mask_text
from pagorecon_dagster.core.money import MoneyError, format_cents, parse_cents
from pagorecon_dagster.pagoefectivo.landing import write_new

if TYPE_CHECKING:
    from pagorecon_dagster.resources import ShopifyApi

log = logging.getLogger("pagorecon.shopify")

API_VERSION = "2025-01"
GRAPHQL_PATH = f"/admin/api/{API_VERSION}/graphql.json"
TOKEN_HEADER = "X-Shopify-Access-Token"
SOURCE = "shopify_api"
PAGE_SIZE = 100          # orders per page; Shopify allows up to 250
LINE_ITEMS = 100         # line items read per order (the export's one row per line item)
MAX_PAGES = 10_000
LIMA = dt.timezone(dt.timedelta(hours=-5), "Lima")

ORDERS_QUERY = f"""
query PagoreconOrders($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    nodes {{
      id legacyResourceId name email createdAt updatedAt cancelledAt
      displayFinancialStatus currencyCode paymentGatewayNames
      totalPriceSet {{ shopMoney {{ amount currencyCode }} }}
      totalDiscountsSet {{ shopMoney {{ amount currencyCode }} }}
      totalRefundedSet {{ shopMoney {{ amount currencyCode }} }}
      transactions(first: 5) {{ paymentId gateway }}
      lineItems(first: {LINE_ITEMS}) {{ nodes {{ name sku quantity originalUnitPriceSet {{ shopMoney {{ amount }} }} }} }}
    }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
""".strip()

# The columns of Shopify's "Export orders" CSV that a pull fills: what pagorecon reads, and the
# line-item columns that make one row per line item.
EXPORT_COLUMNS = (
    "Name", "Email", "Financial Status", "Currency", "Total", "Discount Amount", "Created at",
    "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku", "Cancelled at",
    "Payment Method", "Payment Reference", "Refunded Amount", "Id",
)


class ShopifyError(Exception):
    """A pull that did not succeed; the message names the store and what to do, never the token."""


class ShopifyAuthError(ShopifyError):
    """Shopify refused the access token (401) or its scopes (403)."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _instant(text: Any) -> dt.datetime:
    value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _utc_text(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def updated_since_query(since: dt.datetime) -> str:
    """Shopify's search syntax for "updated at or after `since`"."""
    return f"updated_at:>='{_utc_text(since)}'"


class ShopifyClient:
    """One store's GraphQL Admin API connection."""

    def __init__(
        self,
        store_id: str,
        base_url: str,
        token: str,
        *,
        page_size: int = PAGE_SIZE,
        timeout: tuple[float, float] = (5.0, 60.0),
        max_attempts: int = 4,
        backoff_seconds: float = 1.0,
        max_throttle_waits: int = 30,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ):
        self.store_id = store_id
        self.url = base_url.rstrip("/") + GRAPHQL_PATH
        self._token = token
        self.page_size = page_size
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_throttle_waits = max_throttle_waits
        self.sleep = sleep
        self.session = session or requests.Session()
        self._last_cost: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"ShopifyClient(store={self.store_id!r}, url={self.url!r})"

    def orders_updated_since(self, since: dt.datetime) -> Iterator[dict[str, Any]]:
        """Every order updated at or after `since`, page by page to the last."""
        variables: dict[str, Any] = {"first": self.page_size, "after": None, "query": updated_since_query(since)}
        for page in range(1, MAX_PAGES + 1):
            data = self.graphql(ORDERS_QUERY, variables)
            orders = data.get("orders") if isinstance(data, dict) else None
            if not isinstance(orders, dict) or not isinstance(orders.get("nodes"), list):
                raise ShopifyError(f"store {self.store_id!r}: page {page} of `orders` has no `nodes` list")
            yield from orders["nodes"]
            info = orders.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            if not info.get("endCursor"):
                raise ShopifyError(f"store {self.store_id!r}: page {page} says hasNextPage but gives no endCursor")
            variables = {**variables, "after": info["endCursor"]}
        raise ShopifyError(f"store {self.store_id!r}: more than {MAX_PAGES} pages of orders; pull again later")

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The reply's `data`, after waiting out throttling; other GraphQL errors are a ShopifyError."""
        self._wait_for(self._last_cost, "bucket low")   # the last reply left too little for this query
        for _ in range(self.max_throttle_waits + 1):
            reply = self._post({"query": query, "variables": variables})
            errors = reply.get("errors") or []
            errors = [errors] if isinstance(errors, (str, dict)) else errors
            cost = (reply.get("extensions") or {}).get("cost") or {}
            codes = {str((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)}
            if "THROTTLED" in codes:
                self._wait_for(cost, "THROTTLED")
                continue
            if "ACCESS_DENIED" in codes:
                raise ShopifyAuthError(self._refused("the app lacks a scope (GraphQL ACCESS_DENIED)"))
            if errors:
                messages = "; ".join(str(e.get("message") if isinstance(e, dict) else e) for e in errors)
                raise ShopifyError(f"store {self.store_id!r}: Shopify answered errors: {mask_text(messages)[:500]}")
            self._last_cost = cost
            return reply.get("data") or {}
        raise ShopifyError(f"store {self.store_id!r}: still THROTTLED after {self.max_throttle_waits} waits; pull again later")

    def _wait_for(self, cost: dict[str, Any], why: str) -> None:
        """Sleep until the bucket holds the query's cost again: (cost - available) / restoreRate."""
        status = cost.get("throttleStatus") or {}
        try:
            needed = float(cost.get("requestedQueryCost") or 0)
            available = float(status.get("currentlyAvailable"))
            rate = float(status.get("restoreRate"))
        except (TypeError, ValueError):
            if why == "THROTTLED":   # no numbers to go by: wait one backoff step
                self.sleep(self.backoff_seconds)
            return
        if available >= needed or rate <= 0:
            return
        seconds = (needed - available) / rate
        log.info("store %s: Shopify %s (%.0f of %.0f points available); waiting %.2fs", self.store_id, why, available, needed, seconds)
        self.sleep(seconds)

    def _refused(self, what: str) -> str:
        return (f"store {self.store_id!r}: Shopify refused the access token: {what}. Check {token_env(self.store_id)} "
                f"(an Admin API access token of the store's custom app) and that the app has the read_orders scope; "
                f"nothing was landed.")

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """One call, retried on timeouts, connection errors and 5xx; 401/403 raise ShopifyAuthError."""
        headers = {TOKEN_HEADER: self._token, "Content-Type": "application/json", "Accept": "application/json"}
        try:
            response = send_with_retries(
                lambda: self.session.post(self.url, json=body, headers=headers, timeout=self.timeout),
                attempts=self.max_attempts, backoff_seconds=self.backoff_seconds, sleep=self.sleep,
                timeout_seconds=self.timeout[1], what=f"store {self.store_id}: POST {self.url}", logger=log)
        except RetriesExhausted as exc:
            raise ShopifyError(f"store {self.store_id!r}: POST {self.url} {exc}") from None
        if response.status_code in (401, 403):
            raise ShopifyAuthError(self._refused(f"HTTP {response.status_code}"))
        return self._json(response)

    def _json(self, response: requests.Response) -> dict[str, Any]:
        try:
            reply = response.json()
        except ValueError:
            reply = None
        if response.status_code >= 400 or not isinstance(reply, dict):
            detail = mask_text(json.dumps(reply.get("errors"))[:300]) if isinstance(reply, dict) else "a body that is not a JSON object"
            raise ShopifyError(f"store {self.store_id!r}: POST {self.url} answered HTTP {response.status_code}: {detail}")
        return reply


# -- the landed file: Shopify's export columns ---------------------------------------------------

def _money(value: Any) -> str:
    """Shopify's decimal string (`"250.0"`) as the export writes it (`250.00`); kept as sent when it
    is not plain money, so ingestion quarantines the row instead of a pull hiding it."""
    text = "" if value is None else str(value)
    try:
        return format_cents(parse_cents(text))
    except MoneyError:
        return text


def _shop_money(order: dict[str, Any], field: str) -> Any:
    return ((order.get(field) or {}).get("shopMoney") or {}).get("amount")


def _export_time(text: Any) -> str:
    """`2026-07-14T15:23:45Z` as the export writes it, in Lima time: `2026-07-14 10:23:45 -0500`."""
    return _instant(text).astimezone(LIMA).strftime("%Y-%m-%d %H:%M:%S %z") if text else ""


def export_rows(order: dict[str, Any]) -> list[dict[str, str]]:
    """One row per line item, the order's columns on its first row only, as Shopify exports it."""
    payment_ids = [t.get("paymentId") for t in order.get("transactions") or [] if isinstance(t, dict) and t.get("paymentId")]
    first = {
        "Name": order.get("name") or "",
        "Email": order.get("email") or "",
        "Financial Status": str(order.get("displayFinancialStatus") or "").lower(),
        "Currency": order.get("currencyCode") or "",
        "Total": _money(_shop_money(order, "totalPriceSet")),
        "Discount Amount": _money(_shop_money(order, "totalDiscountsSet") or "0"),
        "Created at": _export_time(order.get("createdAt")),
        "Cancelled at": _export_time(order.get("cancelledAt")),
        "Payment Method": " + ".join(order.get("paymentGatewayNames") or []),
        "Payment Reference": payment_ids[0] if payment_ids else "",
        "Refunded Amount": _money(_shop_money(order, "totalRefundedSet") or "0"),
        "Id": str(order.get("legacyResourceId") or str(order.get("id") or "").rsplit("/", 1)[-1]),
    }
    lines = ((order.get("lineItems") or {}).get("nodes") or [{}])
    rows = []
    for n, line in enumerate(lines):
        row = dict(first) if n == 0 else {"Name": first["Name"], "Email": first["Email"]}
        row.update({
            "Lineitem quantity": str(line.get("quantity") or ""),
            "Lineitem name": line.get("name") or "",
            "Lineitem price": _money(_shop_money(line, "originalUnitPriceSet")) if line else "",
            "Lineitem sku": line.get("sku") or "",
        })
        rows.append(row)
    return rows


def export_csv(orders: Sequence[dict[str, Any]]) -> bytes:
    """The orders, oldest update first, as an "Export orders" CSV (UTF-8, CRLF like Shopify's)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, restval="", lineterminator="\r\n")
    writer.writeheader()
    for order in sorted(orders, key=lambda o: (_instant(o["updatedAt"]), str(o.get("id")))):
        writer.writerows(export_rows(order))
    return buffer.getvalue().encode("utf-8")


# -- the high-water mark -------------------------------------------------------------------------

def state_path(home: Path, store_id: str) -> Path:
    return Path(home) / "state" / "shopify" / f"{store_id}.json"


def _state(settings: Settings, store_id: str) -> tuple[dt.datetime | None, set[str]]:
    path = state_path(settings.home, store_id)
    if not path.exists():
        return None, set()
    state = json.loads(path.read_text(encoding="utf-8"))
    return _instant(state["updated_at"]), set(state.get("ids_at_mark") or ())


def last_pull(settings: Settings, store_id: str) -> dt.datetime | None:
    """The largest `updatedAt` already landed; None before the first pull."""
    return _state(settings, store_id)[0]


def _remember(settings: Settings, store_id: str, mark: dt.datetime, ids_at_mark: list[str], landed: Path) -> None:
    path = state_path(settings.home, store_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"updated_at": _utc_text(mark), "ids_at_mark": sorted(ids_at_mark), "file": landed.name,
               "pulled_at": _utc_text(_utc_now())}
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".state-", suffix=".partial")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(content, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


# -- pulling -------------------------------------------------------------------------------------

def api_stores(settings: Settings) -> list[StoreConfig]:
    return [s for s in settings.stores if s.source == SOURCE]


def _api_store(settings: Settings, store_id: str) -> StoreConfig:
    try:
        store = settings.store(store_id)
    except KeyError:
        raise ShopifyError(f"store {store_id!r} is not in pagorecon.yaml (known: {', '.join(settings.store_ids)})") from None
    if store.source != SOURCE:
        raise ShopifyError(f"store {store_id!r} has `source: {store.source}` in pagorecon.yaml; "
                           f"only stores with `source: {SOURCE}` and a `shop_domain` are pulled from Shopify")
    return store


def token_env(store_id: str) -> str:
    """The variable holding a store's Admin API access token."""
    from pagorecon_dagster.resources import SHOPIFY_TOKEN_PREFIX

    return f"{SHOPIFY_TOKEN_PREFIX}{store_id.upper()}"


def pull_store_orders(settings: Settings, store_id: str, resource: "ShopifyApi", *,
                      client: ShopifyClient | None = None) -> Path | None:
    """Pull the store's orders updated since its last pull into `landing/orders/<store_id>/`.
    Returns the file landed, or None when Shopify had nothing new. Raises ShopifyError (a
    ShopifyAuthError for a refused token) with nothing landed and the mark unchanged."""
    store = _api_store(settings, store_id)
    mark, landed_at_mark = _state(settings, store_id)
    since = mark or dt.datetime.combine(settings.start_date, dt.time(), LIMA)
    if client is None:
        client = ShopifyClient(store_id, resource.base_url(store.shop_domain), resource.token_for(store_id))
    # `>=` the mark: an order updated in the mark's own second after the last pull still comes back;
    # the ones the last pull landed at the mark are not landed again.
    orders = [o for o in client.orders_updated_since(since)
              if not (_instant(o["updatedAt"]) == mark and str(o.get("id")) in landed_at_mark)]
    if not orders:
        log.info("store %s: no Shopify order updated since %s", store_id, _utc_text(since))
        return None
    mark = max(_instant(o["updatedAt"]) for o in orders)
    content = export_csv(orders)
    sha8 = hashlib.sha256(content).hexdigest()[:8]
    # Named by the mark: pulls sort in the order they were made, as ingestion applies them.
    path = settings.landing / "orders" / store_id / f"shopify_api_{mark.strftime('%Y%m%dT%H%M%SZ')}_{sha8}.csv"
    landed = write_new(path, content)
    _remember(settings, store_id, mark, [str(o.get("id")) for o in orders if _instant(o["updatedAt"]) == mark], path)
    log.info("store %s: %d Shopify order(s) updated since %s %s %s", store_id, len(orders), _utc_text(since),
             "landed in" if landed else "were already in", path.name)
    return path if landed else None


@dataclass(frozen=True)
class PullOutcome:
    store_id: str
    path: Path | None = None
    error: str | None = None


def pull_stores(settings: Settings, resource: "ShopifyApi", store_ids: Sequence[str] | None = None) -> list[PullOutcome]:
    """Pull each store (default: every `source: shopify_api` store); one store's failure does not stop the others."""
    outcomes = []
    for store_id in store_ids or [s.id for s in api_stores(settings)]:
        try:
            outcomes.append(PullOutcome(store_id, path=pull_store_orders(settings, store_id, resource)))
        except (ShopifyError, ConfigError) as exc:   # ConfigError: the store's token is not set
            log.error("%s", exc)
            outcomes.append(PullOutcome(store_id, error=str(exc)))
    return outcomes


# -- Dagster -------------------------------------------------------------------------------------

SHOPIFY_PULL_JOB = "shopify_pull"


class ShopifyPullConfig(dg.Config):
    stores: list[str] = []   # empty: every store with `source: shopify_api`


def shopify_pull_job() -> dg.JobDefinition:
    from pagorecon_dagster.resources import SHOPIFY, WAREHOUSE, ShopifyApi, Warehouse

    @dg.op(name="pull_shopify_orders", required_resource_keys={SHOPIFY, WAREHOUSE},
           description="Pull the orders updated since the last pull from each Shopify API store into landing/orders/.")
    def pull_shopify_orders(context: dg.OpExecutionContext, config: ShopifyPullConfig) -> None:
        shopify: "ShopifyApi" = getattr(context.resources, SHOPIFY)
        warehouse: "Warehouse" = getattr(context.resources, WAREHOUSE)
        outcomes = pull_stores(warehouse.settings(), shopify, config.stores or None)
        for outcome in outcomes:
            if outcome.path:
                context.log.info(f"store {outcome.store_id}: landed landing/orders/{outcome.store_id}/{outcome.path.name}")
        failed = [o.error for o in outcomes if o.error]
        if failed:
            raise dg.Failure("\n".join(failed))

    @dg.job(name=SHOPIFY_PULL_JOB, description="Pull Shopify API stores' new and changed orders into landing/.")
    def shopify_pull() -> None:
        pull_shopify_orders()

    return shopify_pull
