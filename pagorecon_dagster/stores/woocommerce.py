"""WooCommerce orders pulled from the shop's REST API into `landing/orders/<store_id>/` as
pagorecon's canonical order CSV (docs/landing-formats.md, Connecting a WooCommerce store).

`GET /wp-json/wc/v3/orders` with the store's consumer key and secret (HTTP basic auth over HTTPS),
100 orders a page up to `X-WP-TotalPages`, only orders modified after the last pull's high-water
mark (`modified_after`, `orderby=modified`), so edits, cancellations and refunds come back and
restate the order. Timeouts, connection errors, 429 and 5xx are retried with backoff; a 401/403
stops the pull with nothing landed. The key and the secret are never logged nor put in an error."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from pagorecon_dagster.config import Settings, StoreConfig
from pagorecon_dagster.core.http import RetriesExhausted, send_with_retries
from pagorecon_dagster.core.masking import mask_text
from pagorecon_dagster.ingestion.sources import PAGOEFECTIVO_RE
from pagorecon_dagster.pagoefectivo.client import loads_exact
from pagorecon_dagster.pagoefectivo.landing import write_new
from pagorecon_dagster.validation.schemas import CANONICAL_ORDER_STATUSES

if TYPE_CHECKING:
    from pagorecon_dagster.resources import WooCommerceApi

log = logging.getLogger("pagorecon.woocommerce")

SOURCE = "woocommerce_api"
ORDERS_PATH = "/wp-json/wc/v3/orders"
PER_PAGE = 100   # the API's maximum
MAX_PAGES = 10_000
KEY_ENV_PREFIX, SECRET_ENV_PREFIX = "PAGORECON_WOO_KEY_", "PAGORECON_WOO_SECRET_"
# Orders modified this long before the mark are asked for again: an edit in the same second as
# the mark, or a shop clock slightly behind ours, is not missed. Orders seen again restate
# themselves with the same values.
OVERLAP = dt.timedelta(minutes=5)

# WooCommerce's order statuses -> canonical `status`. `failed` is an order WooCommerce still lets
# the buyer pay (like `pending`); `on-hold` awaits a payment to be confirmed (a CIP issued).
STATUSES = {
    "pending": "pending",
    "on-hold": "pending",
    "failed": "pending",
    "processing": "paid",
    "completed": "paid",
    "cancelled": "cancelled",
    "refunded": "refunded",
}
assert set(STATUSES.values()) <= set(CANONICAL_ORDER_STATUSES)

CANONICAL_COLUMNS = ("order_id", "created_at", "status", "currency", "total", "discount", "payment_method", "cip",
                     "customer_email", "customer_document")
# Kept beside the canonical columns so a person sees what the shop said; the ingester ignores them.
EXTRA_COLUMNS = ("woo_id", "woo_status", "woo_payment_method", "woo_payment_method_title", "date_modified")


class WooCommerceError(Exception):
    """A pull that did not succeed; the message names the store, the call and the reply, never a credential."""


class WooCommerceAuthError(WooCommerceError):
    """The shop refused the store's consumer key and secret."""


class MissingWooCredentials(LookupError):
    """A variable the store needs is not set; the message names the variables, never a value."""


@dataclass(frozen=True)
class WooCredentials:
    store_id: str
    consumer_key: str = field(repr=False)
    consumer_secret: str = field(repr=False)


def env_names(store_id: str) -> tuple[str, str]:
    """The store's consumer key and secret variables: `PAGORECON_WOO_KEY_<STORE>`, `PAGORECON_WOO_SECRET_<STORE>`."""
    return f"{KEY_ENV_PREFIX}{store_id.upper()}", f"{SECRET_ENV_PREFIX}{store_id.upper()}"


def credentials_for(store_id: str, environ: Mapping[str, str]) -> WooCredentials:
    names = env_names(store_id)
    values = [environ.get(name, "").strip() for name in names]
    missing = [name for name, found in zip(names, values) if not found]
    if missing:
        raise MissingWooCredentials(f"store {store_id!r}: WooCommerce credentials not set: {', '.join(missing)}")
    return WooCredentials(store_id, *values)


def _describe(response: requests.Response) -> str:
    try:
        reply = loads_exact(response.content)
    except (UnicodeDecodeError, ValueError):
        return "a body that is not JSON"
    if not isinstance(reply, dict):
        return "JSON that is not an object"
    return mask_text(f"code {reply.get('code')!r}: {reply.get('message')!r}")


class WooCommerceClient:
    """One store's connection to its shop."""

    def __init__(
        self,
        base_url: str,
        credentials: WooCredentials,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 4,
        backoff_seconds: float = 0.5,
        per_page: int = PER_PAGE,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.per_page = per_page
        self.sleep = sleep
        self.session = session or requests.Session()

    def __repr__(self) -> str:
        return f"WooCommerceClient(store={self.credentials.store_id!r}, url={self.base_url!r})"

    @property
    def store_id(self) -> str:
        return self.credentials.store_id

    def orders_modified_after(self, since: dt.datetime | None) -> list[dict[str, Any]]:
        """Every order modified after `since` (UTC; None: every order), oldest change first, each
        order once in its latest version seen."""
        params: dict[str, Any] = {"per_page": self.per_page, "orderby": "modified", "order": "asc", "dates_are_gmt": "true"}
        if since is not None:
            params["modified_after"] = since.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        orders: list[dict[str, Any]] = []
        page, total = 1, 1
        while page <= total:
            response = self._get(ORDERS_PATH, {**params, "page": page})
            orders.extend(self._orders_of(response, page))
            total = self._total_pages(response)
            page += 1
        return orders

    def _total_pages(self, response: requests.Response) -> int:
        text = response.headers.get("X-WP-TotalPages", "1").strip()
        if not text.isdigit():
            raise WooCommerceError(f"store {self.store_id!r}: GET {ORDERS_PATH}: X-WP-TotalPages is {text!r}, not a number")
        if int(text) > MAX_PAGES:
            raise WooCommerceError(f"store {self.store_id!r}: GET {ORDERS_PATH} says {text} pages; pull a shorter period")
        return int(text)

    def _orders_of(self, response: requests.Response, page: int) -> list[dict[str, Any]]:
        try:
            reply = loads_exact(response.content)
        except (UnicodeDecodeError, ValueError):
            reply = None
        if not isinstance(reply, list) or not all(isinstance(order, dict) for order in reply):
            raise WooCommerceError(f"store {self.store_id!r}: GET {ORDERS_PATH} page {page}: expected a JSON list of orders")
        return reply

    def _get(self, path: str, params: dict[str, Any]) -> requests.Response:
        """One call, retried on timeouts, connection errors, 429 and 5xx; 401/403 raise WooCommerceAuthError."""
        url = self.base_url + path
        auth = (self.credentials.consumer_key, self.credentials.consumer_secret)
        try:
            response = send_with_retries(
                lambda: self.session.get(url, params=params, auth=auth, timeout=self.timeout,
                                         headers={"Accept": "application/json"}),
                attempts=self.max_attempts, backoff_seconds=self.backoff_seconds, sleep=self.sleep,
                timeout_seconds=self.timeout[1], what=f"store {self.store_id}: GET {path} page {params.get('page')}",
                retry_429=True, logger=log)
        except RetriesExhausted as exc:
            raise WooCommerceError(f"store {self.store_id!r}: GET {url} {exc}") from None
        status = response.status_code
        if status in (401, 403):
            raise WooCommerceAuthError(
                f"store {self.store_id!r}: the shop at {self.base_url} refused the consumer key and secret "
                f"(HTTP {status}, {_describe(response)}). Check {' and '.join(env_names(self.store_id))}: "
                f"a key with Read access, created under WooCommerce > Settings > Advanced > REST API."
            )
        if status >= 400:
            raise WooCommerceError(f"store {self.store_id!r}: GET {url} failed: HTTP {status}, {_describe(response)}")
        return response


# -- the canonical CSV -------------------------------------------------------------------------------

def gmt_instant(text: Any) -> dt.datetime | None:
    """WooCommerce's `*_gmt` fields: naive ISO text in UTC."""
    try:
        value = dt.datetime.fromisoformat(str(text).strip())
    except ValueError:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


def _utc_text(text: Any, fallback: Any) -> str:
    """An ISO instant with its offset; the shop's local time (naive: Lima) when the GMT field is missing."""
    instant = gmt_instant(text) if text else None
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ") if instant else ("" if fallback is None else str(fallback))


def is_pagoefectivo(order: Mapping[str, Any], store: StoreConfig) -> bool:
    text = f"{order.get('payment_method') or ''}\n{order.get('payment_method_title') or ''}".lower()
    return any(word in text for word in store.pagoefectivo_match)


def payment_method_text(order: Mapping[str, Any], store: StoreConfig) -> str:
    """The canonical `payment_method`: it reads as PagoEfectivo exactly when `pagoefectivo_match` says so,
    since the ingester decides by the words `pagoefectivo` / `pago efectivo`."""
    method = str(order.get("payment_method_title") or order.get("payment_method") or "").strip()
    reads_as_pe = re.search(PAGOEFECTIVO_RE, method, re.IGNORECASE) is not None
    if is_pagoefectivo(order, store):
        return method if reads_as_pe else f"PagoEfectivo ({method})"
    return re.sub(PAGOEFECTIVO_RE, "other", method, flags=re.IGNORECASE) if reads_as_pe else method


def _money(value: Any) -> str:
    """Amounts as the API wrote them (strings like "120.00"); the ingester judges them."""
    return "" if value is None else str(value).strip()


def canonical_row(order: Mapping[str, Any], store: StoreConfig) -> list[str]:
    woo_status = str(order.get("status") or "")
    billing = order.get("billing") if isinstance(order.get("billing"), dict) else {}
    return [
        str(order.get("number") or order.get("id") or ""),
        _utc_text(order.get("date_created_gmt"), order.get("date_created")),
        STATUSES.get(woo_status, woo_status),   # a status of a plugin's is quarantined, not guessed
        str(order.get("currency") or ""),
        _money(order.get("total")),
        _money(order.get("discount_total")),
        payment_method_text(order, store),
        str(order.get("transaction_id") or ""),
        str(billing.get("email") or ""),
        "",
        str(order.get("id") or ""),
        woo_status,
        str(order.get("payment_method") or ""),
        str(order.get("payment_method_title") or ""),
        _utc_text(order.get("date_modified_gmt"), order.get("date_modified")),
    ]


def csv_bytes(orders: list[Mapping[str, Any]], store: StoreConfig) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CANONICAL_COLUMNS + EXTRA_COLUMNS)
    writer.writerows(canonical_row(order, store) for order in orders)
    return out.getvalue().encode("utf-8")


# -- the pull and its high-water mark ----------------------------------------------------------------

def mark_path(settings: Settings, store_id: str) -> Path:
    """Where a store's high-water mark is kept: delete the file to pull every order again."""
    return mark_path_in(settings.home, store_id)


def mark_path_in(home: Path, store_id: str) -> Path:
    return home / "state" / "woocommerce" / f"{store_id}.json"


@dataclass(frozen=True)
class Mark:
    """The last pull's high-water mark: orders modified after it are pulled next; `seen` are the
    versions (order id -> modified) of the orders in the overlap before it, not landed twice."""

    modified_after: dt.datetime
    seen: dict[str, str]


def read_mark(settings: Settings, store_id: str) -> Mark | None:
    path = mark_path(settings, store_id)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        instant = gmt_instant(data["modified_after"])
        if instant is None or not isinstance(data.get("seen", {}), dict):
            raise ValueError
        return Mark(instant, {str(k): str(v) for k, v in data.get("seen", {}).items()})
    except (ValueError, KeyError, TypeError):
        raise WooCommerceError(f"{path}: not a high-water mark pagorecon wrote; delete it to pull every order again") from None


def _write_mark(settings: Settings, store_id: str, mark: Mark) -> None:
    path = mark_path(settings, store_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    text = json.dumps({"modified_after": mark.modified_after.strftime("%Y-%m-%dT%H:%M:%SZ"), "seen": mark.seen},
                      indent=1, sort_keys=True)
    draft.write_text(text + "\n", encoding="utf-8")
    os.replace(draft, path)


def _version(order: Mapping[str, Any]) -> str:
    return str(order.get("date_modified_gmt") or "")


def next_mark(previous: Mark | None, orders: list[dict[str, Any]], mark: dt.datetime) -> Mark:
    """The new mark, remembering the versions of the orders it will ask for again."""
    seen = dict(previous.seen) if previous else {}
    seen.update({str(o.get("id")): _version(o) for o in orders})
    window = mark - OVERLAP
    return Mark(mark, {k: v for k, v in seen.items() if (gmt_instant(v) or window) > window})


def latest_versions(orders: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dt.datetime | None]:
    """Each order once, in its latest version, oldest change first; and the next high-water mark.

    An order edited during the pull moves to the end of the list and shifts the rest one place
    back, so one order can fall between two pages unseen. Such an order shows up twice; the mark
    then stays at its first version, older than the order that may have been skipped."""
    latest: dict[str, dict[str, Any]] = {}
    first_seen: dict[str, dt.datetime | None] = {}
    moved: list[dt.datetime] = []
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    for order in orders:
        key = str(order.get("id"))
        modified = gmt_instant(order.get("date_modified_gmt"))
        if key in latest:
            moved.append(first_seen[key] or epoch)
            if (modified or epoch) < (gmt_instant(latest[key].get("date_modified_gmt")) or epoch):
                continue
        else:
            first_seen[key] = modified
        latest[key] = order
    ordered = sorted(latest.values(), key=lambda o: (gmt_instant(o.get("date_modified_gmt")) or epoch, str(o.get("id"))))
    known = [m for m in (gmt_instant(o.get("date_modified_gmt")) for o in ordered) if m is not None]
    mark = min(moved) if moved else (max(known) if known else None)
    return ordered, mark


def pull_woocommerce_orders(settings: Settings, store_id: str, resource: WooCommerceApi | None = None, *,
                            client: WooCommerceClient | None = None) -> Path | None:
    """Pull the store's orders changed since its mark into one canonical CSV in
    `landing/orders/<store_id>/`; the file's path, or None when nothing new was landed."""
    try:
        store = settings.store(store_id)
    except KeyError:
        raise ValueError(f"store {store_id!r} is not in pagorecon.yaml (known: {', '.join(settings.store_ids)})") from None
    if store.source != SOURCE:
        raise ValueError(f"store {store_id!r} has `source: {store.source}`; only a `source: {SOURCE}` store is pulled from WooCommerce")
    if client is None:
        if resource is None:
            raise ValueError("pull_woocommerce_orders needs a client or the WooCommerceApi resource")
        client = WooCommerceClient(store.base_url, resource.credentials_for(store_id))
    mark = read_mark(settings, store_id)
    pulled, new_mark = latest_versions(client.orders_modified_after(None if mark is None else mark.modified_after - OVERLAP))
    # The overlap brings back versions already landed: only new ones go into the file.
    orders = [o for o in pulled if mark is None or mark.seen.get(str(o.get("id"))) != _version(o)]
    path = None
    if orders:
        content = csv_bytes(orders, store)
        stamp = (new_mark or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
        path = settings.landing / "orders" / store_id / f"woo_{stamp}_{hashlib.sha256(content).hexdigest()[:8]}.csv"
        if not write_new(path, content):
            path = None   # the same orders were landed already
    if new_mark is not None:
        _write_mark(settings, store_id, next_mark(mark, pulled, new_mark))
    log.info("store %s: %d WooCommerce order(s) changed since %s; %s", store_id, len(orders),
             "the last pull" if mark else "the start", f"landed {path.name}" if path else "nothing new landed")
    return path
