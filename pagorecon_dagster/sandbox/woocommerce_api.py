"""A WooCommerce shop's REST API on loopback, for tests and the demo.

`GET /wp-json/wc/v3/orders` as WooCommerce answers it: HTTP basic auth with a consumer key and
secret (401 `woocommerce_rest_authentication_error` otherwise), `per_page` (1-100, else 400
`rest_invalid_param`), `page` (past the last: 400 `woocommerce_rest_invalid_page_number`),
`orderby` `date`|`id`|`modified`, `order`, `modified_after` (exclusive; GMT with
`dates_are_gmt=true`, else the shop's local time, Lima here), and the `X-WP-Total` /
`X-WP-TotalPages` headers. Orders have WooCommerce's field names and shapes: amounts as strings,
`date_*` in local time and `date_*_gmt` in UTC, both without an offset. Faults are injected on
demand (the next calls fail with a 5xx, or 429 with `Retry-After`), `between_pages` lets a test
edit orders while a pull is under way, and every request is recorded."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pagorecon_dagster.ingestion.sources import PAGOEFECTIVO_RE
from pagorecon_dagster.sandbox.http import Fault, RecordedRequest, Reply, SandboxApi, json_reply
from pagorecon_dagster.stores.woocommerce import ORDERS_PATH, STATUSES

LIMA = dt.timezone(dt.timedelta(hours=-5), "Lima")
MAX_PER_PAGE = 100
# The canonical status a demo order had -> the WooCommerce status a shop would show for it.
WOO_STATUS_OF = {"paid": "processing", "pending": "on-hold", "cancelled": "cancelled", "refunded": "refunded"}
assert all(STATUSES[woo] == canonical for canonical, woo in WOO_STATUS_OF.items())


def _local(instant: dt.datetime) -> str:
    return instant.astimezone(LIMA).strftime("%Y-%m-%dT%H:%M:%S")


def _gmt(instant: dt.datetime) -> str:
    return instant.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def woo_order(order_id: int, *, created: dt.datetime, modified: dt.datetime | None = None, status: str = "on-hold",
              total: str = "100.00", discount_total: str = "0.00", currency: str = "PEN",
              payment_method: str = "pagoefectivo", payment_method_title: str = "PagoEfectivo",
              transaction_id: str = "", email: str = "cliente@example.pe", number: str | None = None) -> dict[str, Any]:
    """An order as `GET /wp-json/wc/v3/orders` returns it (the fields pagorecon reads, and the usual others)."""
    modified = modified or created
    return {
        "id": order_id, "parent_id": 0, "number": number or str(order_id), "order_key": f"wc_order_{order_id:08d}",
        "created_via": "checkout", "version": "9.4.2", "status": status, "currency": currency,
        "date_created": _local(created), "date_created_gmt": _gmt(created),
        "date_modified": _local(modified), "date_modified_gmt": _gmt(modified),
        "discount_total": discount_total, "discount_tax": "0.00", "shipping_total": "0.00", "shipping_tax": "0.00",
        "cart_tax": "0.00", "total": total, "total_tax": "0.00", "prices_include_tax": True, "customer_id": 0,
        "customer_ip_address": "127.0.0.1", "customer_user_agent": "Mozilla/5.0", "customer_note": "",
        "billing": {"first_name": "Cliente", "last_name": "Prueba", "company": "", "address_1": "Av. Arequipa 123",
                    "address_2": "", "city": "Lima", "state": "LIM", "postcode": "15001", "country": "PE",
                    "email": email, "phone": ""},
        "shipping": {"first_name": "Cliente", "last_name": "Prueba", "company": "", "address_1": "Av. Arequipa 123",
                     "address_2": "", "city": "Lima", "state": "LIM", "postcode": "15001", "country": "PE", "phone": ""},
        "payment_method": payment_method, "payment_method_title": payment_method_title,
        "transaction_id": transaction_id,
        "date_paid": None, "date_paid_gmt": None, "date_completed": None, "date_completed_gmt": None,
        "cart_hash": "", "meta_data": [], "line_items": [], "tax_lines": [], "shipping_lines": [], "fee_lines": [],
        "coupon_lines": [], "refunds": [], "payment_url": "", "is_editable": False, "needs_payment": False,
        "needs_processing": True, "currency_symbol": "S/",
        "_links": {"self": [{"href": f"/wp-json/wc/v3/orders/{order_id}"}], "collection": [{"href": ORDERS_PATH}]},
    }


class WooCommerceSandbox(SandboxApi):
    name = "woocommerce-sandbox"
    server_version = "Apache"
    fail_status = 503

    def __init__(self, consumer_key: str, consumer_secret: str, orders: Iterable[dict[str, Any]] = (), *,
                 host: str = "127.0.0.1", port: int = 0):
        super().__init__(host=host, port=port)
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.orders: dict[int, dict[str, Any]] = {int(o["id"]): o for o in orders}
        # Called with the page number after a page was answered: a test edits orders mid-pull here.
        self.between_pages: Callable[[int], None] | None = None

    # --- the shop's side ------------------------------------------------------------------------

    def put(self, order: dict[str, Any]) -> None:
        with self._lock:
            self.orders[int(order["id"])] = order

    def edit(self, order_id: int, modified: dt.datetime, **changes: Any) -> dict[str, Any]:
        """Change an order as the shop's admin would: its `date_modified` moves to `modified`."""
        with self._lock:
            order = {**self.orders[order_id], **changes, "date_modified": _local(modified), "date_modified_gmt": _gmt(modified)}
            self.orders[order_id] = order
        return order

    # --- the API (`fail_next(calls, status, retry_after=...)`: 429 with `Retry-After`) -------------

    def fault_reply(self, fault: Fault) -> Reply:
        status = fault.status or self.fail_status
        return self._reply(status, {"code": "internal_server_error" if status >= 500 else "too_many_requests",
                                    "message": "The shop is busy.", "data": {"status": status}},
                           {"Retry-After": fault.retry_after} if fault.retry_after else {})

    def answer(self, request: RecordedRequest) -> Reply:
        if request.path.rstrip("/") != ORDERS_PATH:
            return self._reply(404, {"code": "rest_no_route", "message": "No route was found matching the URL and request method.",
                                     "data": {"status": 404}})
        if not self._authorized(request.headers.get("authorization", "")):
            return self._reply(401, {"code": "woocommerce_rest_authentication_error", "message": "Consumer secret is invalid.",
                                     "data": {"status": 401}})
        reply = self._reply(*self._orders(request.query))
        if reply.status == 200 and self.between_pages is not None:
            self.between_pages(int(request.query.get("page", "1")))   # before the client can ask for the next page
        return reply

    @staticmethod
    def _reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
        return json_reply(status, body, headers, content_type="application/json; charset=UTF-8")

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            key, _, secret = base64.b64decode(encoded).decode("utf-8").partition(":")
        except ValueError:
            return False
        return key == self.consumer_key and secret == self.consumer_secret

    def _orders(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        try:
            per_page, page = int(query.get("per_page", "10")), int(query.get("page", "1"))
        except ValueError:
            per_page, page = 0, 0
        if not 1 <= per_page <= MAX_PER_PAGE or page < 1:
            return 400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): per_page, page",
                         "data": {"status": 400, "params": {"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"}}}, {}
        gmt = query.get("dates_are_gmt", "false") in ("true", "1")
        field = "date_modified_gmt" if gmt else "date_modified"
        with self._lock:
            orders = list(self.orders.values())
        if "modified_after" in query:
            after = re.sub(r"(Z|[+-]\d\d:\d\d)$", "", query["modified_after"])
            orders = [o for o in orders if o[field] > after]
        key = {"date": "date_created_gmt", "id": "id", "modified": "date_modified_gmt"}.get(query.get("orderby", "date"), "date_created_gmt")
        orders.sort(key=lambda o: (o[key], o["id"]), reverse=query.get("order", "desc") == "desc")
        total = len(orders)
        pages = -(-total // per_page)
        if page > max(pages, 1):
            return 400, {"code": "woocommerce_rest_invalid_page_number",
                         "message": "The page number requested is larger than the number of pages available.",
                         "data": {"status": 400}}, {}
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        return 200, orders[(page - 1) * per_page: page * per_page], headers


# -- the demo: a generated canonical store's orders, served as its WooCommerce shop ------------------

def _instant(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=LIMA)


def orders_from_canonical_files(files: Iterable[Path]) -> list[dict[str, Any]]:
    """The latest version of each order in canonical order CSVs (files named `orders_<day>.csv`, in
    order), as the shop's API would show it now; a value the CSV got wrong is served as it was."""
    latest: dict[str, tuple[dict[str, str], dt.datetime]] = {}
    for path in files:
        day = dt.date.fromisoformat(path.stem.removeprefix("orders_"))
        changed = dt.datetime.combine(day, dt.time(22, 0), LIMA)
        text = path.read_bytes()
        try:
            decoded = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            decoded = text.decode("cp1252")
        for row in csv.DictReader(decoded.splitlines()):
            latest[row["order_id"]] = (row, changed)
    orders = []
    for number, (row, modified) in enumerate(latest.values(), start=1):
        created = _instant(row["created_at"])
        method = row.get("payment_method") or ""
        order = woo_order(
            number, created=created or modified, modified=modified, number=row["order_id"],
            status=WOO_STATUS_OF.get(row["status"].lower(), row["status"]), total=row["total"],
            discount_total=row["discount"], currency=row["currency"],
            payment_method="pagoefectivo" if re.search(PAGOEFECTIVO_RE, method, re.IGNORECASE) else "bacs",
            payment_method_title=method, transaction_id=row.get("cip") or "", email=row.get("customer_email") or "",
        )
        if created is None:   # the export's unreadable timestamp, as the shop would have it
            order.update(date_created=row["created_at"], date_created_gmt=None)
        orders.append(order)
    return orders


DEMO_STORE = "arequipa_mart"


def demo_shop(home: Path, store_id: str = DEMO_STORE) -> WooCommerceSandbox | None:
    """Turn a freshly generated canonical store into a WooCommerce store: its order files (never
    ingested yet) become the orders of a started sandbox shop and `pagorecon.yaml` points the store
    at it. None when the demo has no such store."""
    import secrets

    import yaml

    from pagorecon_dagster.config import CONFIG_FILE
    from pagorecon_dagster.stores.woocommerce import SOURCE, mark_path_in

    config_path = home / CONFIG_FILE
    header, _, body = config_path.read_text(encoding="utf-8").partition("\n")
    config = yaml.safe_load(body if header.startswith("#") else config_path.read_text(encoding="utf-8"))
    entry = next((s for s in config["stores"] if s["id"] == store_id and s.get("order_format") == "canonical"), None)
    if entry is None:
        return None
    files = sorted((home / "landing" / "orders" / store_id).glob("orders_*.csv"))
    key, secret = f"ck_{secrets.token_hex(20)}", f"cs_{secrets.token_hex(20)}"
    shop = WooCommerceSandbox(key, secret, orders_from_canonical_files(files)).start()
    for path in files:   # the shop serves them now; landed, they would be ingested twice
        path.unlink()
    mark_path_in(home, store_id).unlink(missing_ok=True)   # a previous demo's shop had other orders
    entry.update(source=SOURCE, base_url=shop.url)
    text = (header + "\n" if header.startswith("#") else "") + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    config_path.write_text(text, encoding="utf-8")
    return shop
