"""The seeded sandbox generator: determinism, file shapes, planted scenarios and broken rows."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import dagster as dg
import duckdb
import holidays
import pytest
import yaml

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.partitions import range_tags
from pagorecon_dagster.warehouse.duckdb import connect, home_lake
from pagorecon_dagster.sandbox.generator import (
    CANONICAL_HEADER,
    FX_HEADER,
    SHOPIFY_HEADER,
    STATEMENT_HEADER,
    INTENDED,
    STATUSES,
    generate,
    plan_sandbox,
)
from tests.oracle import predict

MONEY = re.compile(r"\d+\.\d{2}")
CIP_STATES = {"paid": "paid", "pending": "pending", "expired": "expired", "deleted": "deleted",
              "reversed": "reversed", "23": "paid", "593": "paid", "22": "pending", "21": "expired",
              "595": "expired", "25": "deleted", "592": "reversed"}
ORDER_STATES = {"pending", "paid", "cancelled", "refunded"}
SHOPIFY_FINANCIAL = {"paid", "pending", "refunded", "partially_refunded", "voided", "authorized", "partially_paid"}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("home"))


# -- helpers ------------------------------------------------------------------------------------
def _digests(home: Path) -> dict[str, str]:
    return {p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file()}


def _read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    return list(csv.reader(io.StringIO(text, newline="")))


def _records(path: Path) -> list[dict[str, str]]:
    rows = _read_csv(path)
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def _cents(text: str) -> int:
    whole, frac = text.split(".")
    return int(whole) * 100 + int(frac)


def _ts(text: str) -> dt.datetime:
    """ISO (naive = Lima) or Shopify's ``2026-07-14 10:23:45 -0500``."""
    try:
        t = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")
    except ValueError:
        t = dt.datetime.fromisoformat(text)
    lima = dt.timezone(dt.timedelta(hours=-5))
    return t.replace(tzinfo=lima) if t.tzinfo is None else t.astimezone(lima)


def _parses(text: str) -> bool:
    try:
        _ts(text)
        return True
    except ValueError:
        return False


def _norm(ref: str) -> str:
    ref = ref.strip()
    return (ref[1:] if ref.startswith("#") else ref).strip().upper()


def _statement_ok(r: dict[str, str]) -> bool:
    return (bool(MONEY.fullmatch(r["amount"])) and r["status"] in CIP_STATES and r["currency"] in ("PEN", "USD")
            and all(r[k] == "" or MONEY.fullmatch(r[k]) for k in ("commission", "igv"))
            and _parses(r["date_creation"]) and _parses(r["date_expiry"])
            and (r["date_payment"] == "" or _parses(r["date_payment"])))


def _canonical_ok(r: dict[str, str]) -> bool:
    return (bool(MONEY.fullmatch(r["total"])) and bool(MONEY.fullmatch(r["discount"]))
            and r["status"] in ORDER_STATES and r["currency"] in ("PEN", "USD") and _parses(r["created_at"]))


def _shopify_ok(r: dict[str, str]) -> bool:
    if not r["Financial Status"]:  # a line-item continuation row
        return bool(MONEY.fullmatch(r["Lineitem price"]))
    return (all(MONEY.fullmatch(r[k]) for k in ("Subtotal", "Shipping", "Total", "Discount Amount", "Refunded Amount"))
            and r["Financial Status"] in SHOPIFY_FINANCIAL and r["Currency"] in ("PEN", "USD")
            and _parses(r["Created at"]) and (r["Cancelled at"] == "" or _parses(r["Cancelled at"])))


def _stores(home: Path) -> list[dict]:
    return yaml.safe_load((home / "pagorecon.yaml").read_text(encoding="utf-8"))["stores"]


# -- determinism --------------------------------------------------------------------------------
def test_same_arguments_give_identical_bytes(tmp_path):
    first = generate(tmp_path / "a")
    second = generate(tmp_path / "b")
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert len(_digests(tmp_path / "a")) == len(first.files) > 50
    assert first.expected == second.expected
    assert first.expected_reasons == second.expected_reasons


def test_another_seed_gives_other_data(tmp_path):
    generate(tmp_path / "a", seed=7)
    generate(tmp_path / "b", seed=8)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert a.keys() == b.keys()
    assert sum(a[k] != b[k] for k in a) > len(a) // 2


# -- configuration ------------------------------------------------------------------------------
def test_config_lists_the_stores(sandbox):
    config = yaml.safe_load((sandbox.home / "pagorecon.yaml").read_text(encoding="utf-8"))
    assert [s["id"] for s in config["stores"]] == sandbox.store_ids == ["lima_shop", "cusco_store", "arequipa_mart"]
    lima, cusco, arequipa = config["stores"]
    assert (lima["name"], lima["order_format"], lima["reference_field"]) == ("Lima Shop", "shopify", "name")
    assert lima["auto_refund_limit"] == "150.00"
    assert (cusco["name"], cusco["order_format"], cusco["reference_field"]) == ("Cusco Store", "canonical", "order_id")
    assert (arequipa["order_format"], arequipa["reference_field"]) == ("canonical", "order_id")
    assert config["start_date"] == "2024-01-01"
    assert config["fx_tolerance_pct"] == 1.0
    assert config["missing_payment_grace_business_days"] == 2
    assert config["extra_non_working_days"] == []
    assert config["alerts"] == {"refund_rate_pct": 5.0}


def test_stores_beyond_three_alternate_formats(tmp_path):
    sandbox = generate(tmp_path, stores=6, days=4, orders_per_day=3)
    stores = _stores(tmp_path)
    assert sandbox.store_ids[3:] == ["store_4", "store_5", "store_6"]
    assert [s["order_format"] for s in stores[3:]] == ["shopify", "canonical", "shopify"]
    assert [s["reference_field"] for s in stores[3:]] == ["name", "order_id", "name"]
    assert stores[3]["name"] == "Store 4"


# -- file shapes --------------------------------------------------------------------------------
def test_layout_and_every_csv_parses_with_its_header(sandbox):
    home, landing = sandbox.home, sandbox.home / "landing"
    formats = {s["id"]: s["order_format"] for s in _stores(home)}
    days = [sandbox.start + dt.timedelta(days=i) for i in range((sandbox.end - sandbox.start).days + 1)]
    for sid, fmt in formats.items():
        for day in days:
            assert (landing / "orders" / sid / f"orders_{day.isoformat()}.csv").is_file()
            assert (landing / "statements" / sid / f"statement_{day.isoformat()}.csv").is_file()
    csvs = sorted(landing.rglob("*.csv"))
    assert csvs
    for path in csvs:
        rows = _read_csv(path)
        kind, sid = path.relative_to(landing).parts[0], path.parent.name
        if kind == "orders" and formats[sid] == "shopify":
            assert rows[0] == SHOPIFY_HEADER, path
            assert path.read_bytes().count(b"\r\n") == path.read_bytes().count(b"\n"), "Shopify writes CRLF"
        elif kind == "orders":
            assert rows[0][: len(CANONICAL_HEADER)] == CANONICAL_HEADER, path
            assert rows[0][len(CANONICAL_HEADER):] in ([], ["customer_name"]), path
        elif kind == "statements":
            assert rows[0] == STATEMENT_HEADER, path
        else:
            assert kind == "fx" and re.fullmatch(r"sbs_\d{4}-\d{2}\.csv", path.name) and rows[0] == FX_HEADER
        assert all(len(row) == len(rows[0]) for row in rows), path


def test_shopify_rows_look_like_the_export(sandbox):
    seen_multi_line = False
    for path in sorted((sandbox.home / "landing/orders/lima_shop").glob("*.csv")):
        previous = None
        for r in _records(path):
            assert re.fullmatch(r"#\d+", r["Name"])
            if r["Financial Status"]:
                assert re.fullmatch(r"\d{13}", r["Id"]) and r["Currency"] in ("PEN", "USD")
                if _parses(r["Created at"]):
                    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d -0500", r["Created at"])
                if r["Financial Status"] == "voided":
                    assert r["Cancelled at"]
                previous = r["Name"]
            else:  # continuation: same order, only line-item columns
                assert r["Name"] == previous and r["Lineitem name"]
                assert r["Total"] == r["Currency"] == r["Created at"] == r["Id"] == ""
                seen_multi_line = True
    assert seen_multi_line


def test_statement_values(sandbox):
    cip_store: dict[str, str] = {}
    codes = set()
    for path in sorted((sandbox.home / "landing/statements").rglob("statement_*.csv")):
        for r in _records(path):
            assert re.fullmatch(r"\d{8}", r["cip"])
            assert cip_store.setdefault(r["cip"], path.parent.name) == path.parent.name, "CIPs are unique"
            codes.add(r["status"])
            if _statement_ok(r) and r["commission"]:
                commission = _cents(r["commission"])
                assert abs(commission - _cents(r["amount"]) * 35 // 1000) <= 1
                assert r["igv"] == "" or abs(_cents(r["igv"]) - commission * 18 // 100) <= 1
    assert {"paid", "pending", "23", "22"} <= codes and ({"reversed", "592"} & codes)
    lima_refs = [r["transaction_code"] for p in (sandbox.home / "landing/statements/lima_shop").glob("statement_*.csv")
                 for r in _records(p)]
    assert any(ref.startswith("#") for ref in lima_refs) and any(ref.isdigit() for ref in lima_refs)


def test_a_holiday_falls_in_the_span(sandbox):
    pe = holidays.PE(years=range(sandbox.start.year, sandbox.end.year + 1))
    span = [sandbox.start + dt.timedelta(days=i) for i in range((sandbox.end - sandbox.start).days + 1)]
    assert dt.date(2026, 7, 23) in span and any(d in pe for d in span)


def test_some_payments_are_made_after_19_lima(sandbox):
    late = []
    for path in (sandbox.home / "landing/statements").rglob("statement_*.csv"):
        for r in _records(path):
            if r["date_payment"].endswith("-05:00") and _parses(r["date_payment"]):
                if _ts(r["date_payment"]).hour >= 19:
                    late.append(r["date_payment"])
    assert late


def test_fx_rates_cover_business_days_only(sandbox):
    pe = holidays.PE(years=2026)
    rows = [r for p in sorted((sandbox.home / "landing/fx").glob("*.csv")) for r in _records(p)]
    dates = [dt.date.fromisoformat(r["date"]) for r in rows]
    assert min(dates) < sandbox.start and max(dates) <= sandbox.end
    assert all(d.weekday() < 5 and d not in pe for d in dates)
    assert all(re.fullmatch(r"3\.[78]\d\d", r["sell"]) and r["buy"] < r["sell"] for r in rows)


def test_special_encodings(sandbox):
    files = sorted((sandbox.home / "landing").rglob("*.csv"))
    raw = {p: p.read_bytes() for p in files}

    def utf8(data: bytes) -> bool:
        try:
            data.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False

    latin1 = [p for p, b in raw.items() if not utf8(b)]
    assert latin1 and all(b"Pe\xf1a" in raw[p] for p in latin1)
    assert any(b.startswith(b"\xef\xbb\xbf") for p, b in raw.items() if "orders" in p.parts)
    assert any(b"\r\n" in b for p, b in raw.items() if p.parent.name == "cusco_store" and "orders" in p.parts)


def test_json_inputs_agree_with_the_statements(sandbox):
    statements = sandbox.home / "landing/statements"
    rows = defaultdict(list)
    for path in sorted(statements.rglob("statement_*.csv")):
        for r in _records(path):
            rows[r["cip"]].append(r)
    notifications = sorted(statements.rglob("notifications_*.json"))
    assert notifications
    for path in notifications:
        bodies = json.loads(path.read_text(encoding="utf-8"))
        ops = Counter(b["operationNumber"] for b in bodies)
        assert max(ops.values()) == 2, "one delivery is repeated"
        for b in bodies:
            assert b["eventType"] == "cip.paid"
            paid = [r for r in rows[str(b["data"]["cip"])] if CIP_STATES[r["status"]] == "paid"]
            assert paid and paid[-1]["operation_number"] == b["operationNumber"]
            assert _cents(f'{float(b["data"]["amount"]):.2f}') == _cents(paid[-1]["amount"])
            assert b["data"]["transactionCode"] == paid[-1]["transaction_code"]
    searches = sorted(statements.rglob("cips_search_*.json"))
    assert searches
    for path in searches:
        reply = json.loads(path.read_text(encoding="utf-8"))
        assert reply["code"] == 100 and reply["data"]
        for cip in reply["data"]:
            last = rows[str(cip["cip"])][-1]
            assert CIP_STATES[str(cip["status"])] == CIP_STATES[last["status"]]
            assert cip["currency"] == last["currency"] and cip["transactionCode"] == last["transaction_code"]


def _notification_mismatches(home: Path) -> dict[str, list[tuple[dt.date, str, str]]]:
    """The NOTIFICATION_MISMATCH rule (docs/operations.md) read off the files, for each store that
    receives notifications: (payment day, CIP, what) of every disagreement."""
    out = {}
    for folder in sorted(p for p in (home / "landing/statements").iterdir() if p.is_dir()):
        notified = {str(b["data"]["cip"]): _ts(b["data"]["paymentDate"]).date()
                    for path in sorted(folder.glob("notifications_*.json"))
                    for b in json.loads(path.read_text(encoding="utf-8"))}
        if not notified:
            continue
        first, settled, paid = min(notified.values()), set(), {}
        for path in sorted(folder.glob("statement_*.csv")):
            for r in _records(path):
                state = CIP_STATES.get(r["status"]) if _statement_ok(r) else None
                if state in ("paid", "reversed"):
                    settled.add(r["cip"])
                if state == "paid":
                    paid[r["cip"]] = _ts(r["date_payment"]).date()
        never = [(day, cip, "never notified") for cip, day in paid.items() if day >= first and cip not in notified]
        unbacked = [(day, cip, "not in the statements") for cip, day in notified.items() if cip not in settled]
        out[folder.name] = sorted(never + unbacked)
    return out


def test_notifications_cover_every_payment_but_one_lost_webhook_per_store(sandbox):
    statements = sandbox.home / "landing/statements"
    first_days = {sid: min(p.name for p in (statements / sid).glob("notifications_*.json"))
                  for sid in ("lima_shop", "cusco_store")}
    assert first_days == {"lima_shop": "notifications_2026-07-15.json", "cusco_store": "notifications_2026-07-23.json"}
    assert not list((statements / "arequipa_mart").glob("notifications_*.json"))
    mismatches = _notification_mismatches(sandbox.home)
    assert {sid: [(day, what) for day, _, what in found] for sid, found in mismatches.items()} == {
        "lima_shop": [(dt.date(2026, 7, 24), "never notified")],
        "cusco_store": [(dt.date(2026, 7, 29), "never notified")],
    }
    assert sandbox.expected_alerts == {"NOTIFICATION_MISMATCH": 2}
    # every other payment from the first notification on is notified: dozens per store
    notified = Counter(p.parent.name for p in statements.rglob("notifications_*.json")
                       for _ in json.loads(p.read_text(encoding="utf-8")))
    assert notified["lima_shop"] > 150 and notified["cusco_store"] > 80


def test_the_pipeline_raises_exactly_the_planted_notification_mismatches(tmp_path):
    sandbox = generate(tmp_path, stores=2, days=8, orders_per_day=4)
    planted = _notification_mismatches(tmp_path)
    assert sandbox.expected_alerts == {"NOTIFICATION_MISMATCH": 2} and [len(v) for v in planted.values()] == [1, 1]
    job = dg.define_asset_job("sandbox_alerts", selection=dg.AssetSelection.groups("ingestion", "reconciliation", "alerts"))
    defs = dg.Definitions.merge(build_definitions(load_settings(tmp_path)), dg.Definitions(jobs=[job]))
    result = defs.resolve_job_def("sandbox_alerts").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags=range_tags(sandbox.store_ids, sandbox.start, sandbox.end))
    assert result.success
    with connect(home_lake(tmp_path), read_only=True) as con:
        raised = con.execute("SELECT store_id, business_date, message FROM alerts WHERE kind = 'NOTIFICATION_MISMATCH' "
                             "ORDER BY store_id").fetchall()
        statuses = dict(con.execute("SELECT status, count(*) FROM recon_items GROUP BY status").fetchall())
    assert len(raised) == sandbox.expected_alerts["NOTIFICATION_MISMATCH"]
    assert raised == [
        (sid, day, f"1 CIP(s) paid on {day} where notifications and statements disagree: "
                   f"CIP {cip} paid in the statements, never notified.")
        for sid, found in sorted(planted.items()) for day, cip, _ in found
    ]
    # the notifications restate the statements: reconciliation is exactly what was planted
    assert statuses == {k: v for k, v in sandbox.expected.items() if k != "QUARANTINED" and v}


# -- scenarios and broken rows ------------------------------------------------------------------
def test_expected_names_every_status(sandbox):
    assert set(STATUSES) <= set(sandbox.expected)
    assert all(sandbox.expected[s] >= 1 for s in STATUSES), sandbox.expected
    assert sandbox.expected["QUARANTINED"] >= 7
    assert {"FX_CONVERTED", "UNDERPAID", "OVERPAID", "ORDER_PAID_OTHER_METHOD"} <= set(sandbox.expected_reasons)
    orders = sum(sandbox.expected[s] for s in STATUSES)
    assert sandbox.expected["MATCHED"] / orders > 0.6


def _bad_rows(home: Path) -> list[tuple[str, dict]]:
    formats = {s["id"]: s["order_format"] for s in _stores(home)}
    bad = []
    for path in sorted((home / "landing").rglob("*.csv")):
        kind, sid = path.relative_to(home / "landing").parts[0], path.parent.name
        check = {"statements": _statement_ok, "fx": lambda r: True}.get(kind)
        if check is None:
            check = _shopify_ok if formats[sid] == "shopify" else _canonical_ok
        bad += [(path.name, r) for r in _records(path) if not check(r)]
    return bad


def test_broken_rows_are_the_counted_ones(sandbox, tmp_path):
    bad = _bad_rows(sandbox.home)
    assert len(bad) == sandbox.expected["QUARANTINED"]
    text = json.dumps([r for _, r in bad], ensure_ascii=False)
    for needle in ("1,234.50", "12.345", "-5.00", "S/ 20.00", "paidd", "EUR"):
        assert needle in text
    clean = generate(tmp_path, days=7, broken_rows=False)
    assert clean.expected["QUARANTINED"] == 0 and _bad_rows(tmp_path) == []


def _reconcile(home: Path) -> tuple[Counter, Counter]:
    """An independent reading of the files under docs/reconciliation.md (JSON inputs only restate the CSVs)."""
    config = yaml.safe_load((home / "pagorecon.yaml").read_text(encoding="utf-8"))
    off = set(holidays.PE(years=range(2023, 2030))) | {dt.date.fromisoformat(d) for d in config["extra_non_working_days"]}
    fx = sorted((dt.date.fromisoformat(r["date"]), int(r["sell"].replace(".", "")))
                for p in (home / "landing/fx").glob("*.csv") for r in _records(p))
    statuses, reasons = Counter(), Counter()
    for store in _stores(home):
        sid, shopify = store["id"], store["order_format"] == "shopify"
        orders, other_method = {}, set()
        for path in sorted((home / "landing/orders" / sid).glob("*.csv")):
            for r in _records(path):
                if shopify and r["Financial Status"] and _shopify_ok(r):
                    cancelled = r["Cancelled at"] or r["Financial Status"] == "voided"
                    paid = r["Financial Status"] in ("paid", "partially_refunded", "refunded")
                    status = "cancelled" if cancelled else "paid" if paid else "pending"
                    o = dict(ref=r["Name"], status=status, currency=r["Currency"], total=_cents(r["Total"]),
                             created=_ts(r["Created at"]), method=r["Payment Method"])
                elif not shopify and _canonical_ok(r):
                    o = dict(ref=r["order_id"], status=r["status"], currency=r["currency"], total=_cents(r["total"]),
                             created=_ts(r["created_at"]), method=r["payment_method"])
                else:
                    continue
                ref = _norm(o["ref"])
                if re.search("pagoefectivo|pago efectivo", o["method"], re.I):
                    orders[ref] = o
                else:
                    other_method.add(ref)
        cips = {}
        for path in sorted((home / "landing/statements" / sid).glob("*.csv")):
            for r in _records(path):
                if _statement_ok(r):
                    cips[r["cip"]] = dict(r, state=CIP_STATES[r["status"]])
        coverage = max(_ts(t) for c in cips.values() for t in (c["date_creation"], c["date_payment"]) if t)
        linked = defaultdict(list)
        for c in cips.values():
            linked[_norm(c["transaction_code"])].append(c)
        for ref in set(orders) | set(linked):
            o, cs = orders.get(ref), linked.get(ref, [])
            paid = sorted((c for c in cs if c["state"] == "paid"), key=lambda c: (_ts(c["date_payment"]), c["cip"]))
            if o is None:
                statuses["ORPHAN_PAYMENT"] += len(paid)
                reasons["ORDER_PAID_OTHER_METHOD"] += len(paid) if ref in other_method else 0
                continue
            statuses["DUPLICATE_PAYMENT"] += max(0, len(paid) - 1)
            if paid and o["status"] == "cancelled":
                statuses["PAID_CANCELLED_ORDER"] += 1
            elif paid:
                c = paid[0]
                amount = _cents(c["amount"])
                if c["currency"] == o["currency"]:
                    diff = amount - o["total"]
                    statuses["MATCHED" if diff == 0 else "AMOUNT_MISMATCH"] += 1
                    reasons["UNDERPAID" if diff < 0 else "OVERPAID"] += diff != 0
                else:
                    day = _ts(c["date_payment"]).date()
                    sell = [s for d, s in fx if d <= day][-1]
                    conv, total = (amount * sell, o["total"] * 1000) if o["currency"] == "PEN" else \
                        (amount * 1000, o["total"] * sell)
                    ok = abs(conv - total) * 100 <= total
                    statuses["MATCHED" if ok else "CURRENCY_MISMATCH"] += 1
                    reasons["FX_CONVERTED"] += ok
            elif o["status"] == "cancelled":
                statuses["CANCELLED_UNPAID"] += 1
            elif any(c["state"] == "reversed" for c in cs):
                statuses["REVERSED"] += 1
            elif o["status"] in ("paid", "refunded") and _grace(o["created"].date(), off) <= coverage.date():
                statuses["MISSING_PAYMENT"] += 1
            elif o["status"] not in ("paid", "refunded") and cs and _expired(
                    max(cs, key=lambda c: (_ts(c["date_creation"]), c["cip"])), coverage):
                statuses["EXPIRED_UNPAID"] += 1
            else:
                statuses["AWAITING_PAYMENT"] += 1
    return statuses, +reasons


def _grace(day: dt.date, off: set[dt.date], n: int = 2) -> dt.date:
    """The n-th business day strictly after ``day``."""
    while n:
        day += dt.timedelta(days=1)
        n -= day.weekday() < 5 and day not in off
    return day


def _expired(cip: dict, coverage: dt.datetime) -> bool:
    return cip["state"] in ("expired", "deleted") or _ts(cip["date_expiry"]) < coverage


def test_expected_agrees_with_an_independent_reading_of_the_files(sandbox):
    statuses, reasons = _reconcile(sandbox.home)
    assert {s: statuses[s] for s in STATUSES} == {s: sandbox.expected[s] for s in STATUSES}
    assert dict(reasons) == sandbox.expected_reasons


def test_a_span_without_holidays_gets_a_decreed_day_off(tmp_path):
    sandbox = generate(tmp_path, stores=4, days=10, start=dt.date(2026, 2, 2), seed=3, orders_per_day=6)
    config = yaml.safe_load((tmp_path / "pagorecon.yaml").read_text(encoding="utf-8"))
    extra = [dt.date.fromisoformat(d) for d in config["extra_non_working_days"]]
    assert len(extra) == 1 and sandbox.start < extra[0] <= sandbox.end and extra[0].weekday() < 5
    statuses, reasons = _reconcile(tmp_path)
    assert {s: statuses[s] for s in STATUSES} == {s: sandbox.expected[s] for s in STATUSES}
    assert dict(reasons) == sandbox.expected_reasons


def test_every_planned_scenario_reconciles_as_intended():
    plan = plan_sandbox(stores=3, days=21, start=dt.date(2026, 7, 13), seed=7, orders_per_day=12, broken_rows=True)
    kinds = Counter()
    for item in (item for store in plan.stores for item in predict(store, plan.ctx)):
        if item.order is not None and item.status != "DUPLICATE_PAYMENT":
            assert INTENDED[item.order.kind] == (item.status, item.reason), (item.order.kind, item)
            kinds[item.order.kind] += 1
    planted = {"missing_payment", "fx_converted", "fx_reverse", "underpaid", "overpaid", "expired_unpaid",
               "duplicate", "reversed", "currency_mismatch", "paid_cancelled", "cancelled_unpaid", "awaiting",
               "matched_evening", "matched_holiday", "matched_after_extension"}
    assert all(kinds[k] >= 3 for k in planted), kinds  # in every store


@pytest.mark.parametrize("seed", [7, 3])
def test_the_intended_counts_are_what_an_independent_reconciler_of_the_plan_predicts(seed):
    """`expected` comes from the labels the generator planted; the oracle judges the same plan
    from its orders and CIPs alone, and both agree item for item, per store."""
    plan = plan_sandbox(stores=3, days=21, start=dt.date(2026, 7, 13), seed=seed, orders_per_day=12, broken_rows=True)
    for store in plan.stores:
        predicted = Counter((i.status, i.reason) for i in predict(store, plan.ctx))
        assert Counter((i.status, i.reason) for i in plan.intended() if i.store_id == store.store.id) == predicted
