"""Every rerun is diffable (docs/reconciliation.md, What a rerun changed): a late statement changes
one day; `pagorecon diff` lists exactly the items it changed there and nothing for the other day,
and only that day's report says it changed since the previous run."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json

import pytest

from pagorecon_dagster.cli import main
from pagorecon_dagster.config import load_settings
from pagorecon_dagster.reports.language import LABELS
from pagorecon_dagster.reports.window import daily_reports
from pagorecon_dagster.reports.writer import write_report
from pagorecon_dagster.warehouse.duckdb import connect
from tests.conftest import Home

TUESDAY, WEDNESDAY = "2026-07-14", "2026-07-15"

FIRST_ORDERS = """\
A1,2026-07-14 10:00:00,pending,PEN,100.00,0.00,PagoEfectivo,90000001,,
A2,2026-07-14 11:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,
B1,2026-07-15 09:00:00,pending,PEN,80.00,0.00,PagoEfectivo,,,
"""
FIRST_STATEMENT = """\
90000001,A1,,pending,PEN,100.00,,,2026-07-14T10:05:00-05:00,2026-07-20T10:05:00-05:00,,BCP,,,
90000003,A2,,paid,PEN,50.00,1.50,0.27,2026-07-14T11:05:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,
90000004,A2,,paid,PEN,50.00,1.50,0.27,2026-07-14T11:06:00-05:00,,2026-07-14T12:30:00-05:00,BCP,,,
90000005,B1,,paid,PEN,80.00,2.40,0.43,2026-07-15T09:05:00-05:00,,2026-07-15T10:00:00-05:00,BCP,,,
"""
# Late for Tuesday: A1 paid (changed), A2's second payment reversed (its duplicate row removed),
# a payment whose buyer typed an email as the reference (an orphan, added). Nothing of Wednesday.
LATE_STATEMENT = """\
90000001,A1,,paid,PEN,100.00,3.00,0.54,2026-07-14T10:05:00-05:00,2026-07-20T10:05:00-05:00,2026-07-14T18:00:00-05:00,BCP,,,
90000004,A2,,reversed,PEN,50.00,1.50,0.27,2026-07-14T11:06:00-05:00,,2026-07-14T12:30:00-05:00,BCP,,,
90000009,ana.perez@example.pe,,paid,PEN,25.00,0.75,0.14,2026-07-14T16:00:00-05:00,,2026-07-14T16:30:00-05:00,BCP,,,
"""


def diff(home, capsys, day: str, fmt: str = "table", store: str = "shop") -> tuple[int, str, str]:
    code = main(["--home", str(home.path), "diff", "--store", store, "--date", day, "--format", fmt])
    out, err = capsys.readouterr()
    return code, out, err


def diff_rows(home, capsys, day: str) -> list[dict]:
    code, out, _ = diff(home, capsys, day, "csv")
    assert code == 0
    return list(csv.DictReader(io.StringIO(out)))


def daily_report(home, day: str, suffix: str = "csv") -> str:
    return (home.path / "reports" / "daily" / "2026-07" / f"shop_{day}.{suffix}").read_text(encoding="utf-8")


def facts(report_csv: str) -> dict[str, str]:
    """The report's facts: the lines of two cells before its first table."""
    head = report_csv.lstrip("\ufeff").split("\n\n", 1)[0]
    return {row[0]: row[1] for row in csv.reader(io.StringIO(head)) if len(row) == 2}


@pytest.fixture(scope="module")
def rerun(tmp_path_factory):
    """Reconciled Tuesday and Wednesday, then a late statement for Tuesday and the same window again.
    The tests below only read what it wrote. Gives the home and Wednesday's report bytes after the first run."""
    home = Home(tmp_path_factory.mktemp("diff") / "home")
    home.path.mkdir()
    home.config()
    home.orders(FIRST_ORDERS)
    home.statements(FIRST_STATEMENT, name="2026-07-15.csv")
    home.run(TUESDAY, WEDNESDAY, stores=["shop"])
    first = {fmt: (home.path / f"reports/daily/2026-07/shop_{WEDNESDAY}.{fmt}").read_bytes() for fmt in ("html", "csv", "xlsx")}
    home.statements(LATE_STATEMENT, name="2026-07-16_late.csv")
    home.run(TUESDAY, WEDNESDAY, stores=["shop"])
    return home, first


def test_a_day_never_reconciled_or_reconciled_once_says_so(home, capsys):
    home.orders(FIRST_ORDERS)
    home.statements(FIRST_STATEMENT)
    home.run(TUESDAY, TUESDAY, stores=["shop"])
    code, out, _ = diff(home, capsys, WEDNESDAY)
    assert code == 0
    assert out.startswith(f"shop {WEDNESDAY}: no reconciliation of this day is recorded in the warehouse")
    code, out, _ = diff(home, capsys, TUESDAY)
    assert out.startswith(f"shop {TUESDAY}: reconciled once only (snapshot ") and "into 3 item(s); no earlier run" in out
    code, out, err = diff(home, capsys, TUESDAY, "json")
    assert (code, out) == (0, "[]\n")
    assert "reconciled once only" in err


def test_after_a_late_statement_diff_lists_exactly_the_items_it_changed(rerun, capsys):
    home, _ = rerun
    rows = diff_rows(home, capsys, TUESDAY)
    assert [(r["change"], r["item"], r["order_id"], r["cip"]) for r in rows] == [
        ("changed", "order", "A1", "90000001"),
        ("removed", "CIP", "A2", "90000004"),
        ("added", "CIP", "", "90000009"),
    ]
    a1, a2, z9 = rows
    assert a1["changed"] == "status reason paid_currency paid_amount_cents difference_cents"
    assert a2["changed"] == z9["changed"] == ""
    assert (a1["status_before"], a1["reason_before"], a1["status_after"], a1["reason_after"]) == (
        "AWAITING_PAYMENT", "CIP_PENDING", "MATCHED", "")
    assert (a1["paid_amount_cents_before"], a1["paid_amount_cents_after"], a1["difference_cents_after"]) == ("", "10000", "0")
    assert a1["evidence_after"].startswith("CIP 90000001 paid PEN 100.00 on 2026-07-14 18:00 Lima")
    assert a1["evidence_before"] and a1["evidence_before"] != a1["evidence_after"]
    assert (a2["status_before"], a2["status_after"], a2["evidence_after"]) == ("DUPLICATE_PAYMENT", "", "")
    assert (z9["status_after"], z9["reason_after"], z9["paid_amount_cents_after"], z9["status_before"]) == (
        "ORPHAN_PAYMENT", "NO_ORDER", "2500", "")
    # personal data is masked as in every output a person reads: the email typed as a reference
    assert z9["reference"].startswith("A****") and z9["reference"].endswith("@EXAMPLE.PE")
    assert "paid PEN 25.00 on 2026-07-14 16:30 Lima" in z9["evidence_after"]
    assert all("ana.perez" not in value.lower() for row in rows for value in row.values())

    code, out, _ = diff(home, capsys, TUESDAY)
    assert code == 0
    assert "It added 1, removed 1 and changed 1 item(s); 1 of the day's 3 item(s) are as they were." in out
    assert "changed  order A1\n  status           AWAITING_PAYMENT (CIP_PENDING) -> MATCHED\n" in out
    assert "  paid             - -> PEN 100.00\n" in out
    assert "removed  CIP 90000004\n  status           DUPLICATE_PAYMENT (PAID_AGAIN)\n" in out
    assert "added    CIP 90000009\n  status           ORPHAN_PAYMENT (NO_ORDER)\n" in out
    assert "  difference       PEN 25.00\n" in out and "ana.perez" not in out.lower()

    code, out, err = diff(home, capsys, TUESDAY, "json")
    assert [(r["change"], r["cip"], r["paid_amount_cents_after"], r["changed"]) for r in json.loads(out)] == [
        ("changed", "90000001", 10000, ["status", "reason", "paid_currency", "paid_amount_cents", "difference_cents"]),
        ("removed", "90000004", None, []), ("added", "90000009", 2500, [])]
    assert "last reconciled at snapshot" in err and "ana.perez" not in out.lower()


def test_a_day_the_rerun_left_as_it_was_lists_nothing(rerun, capsys):
    home, _ = rerun
    assert diff_rows(home, capsys, WEDNESDAY) == []
    code, out, _ = diff(home, capsys, WEDNESDAY)
    assert code == 0
    assert out.splitlines()[-1] == "It changed nothing: the day's 1 item(s) are as they were."


def test_only_the_changed_days_report_says_it_changed_since_the_previous_run(rerun):
    home, first = rerun
    label = LABELS["en"]["changed"]
    assert facts(daily_report(home, TUESDAY))[label] == (
        f"1 item(s) added, 1 removed, 1 changed by the last run of this day (`pagorecon diff --store shop --date {TUESDAY}` "
        "lists them, with their evidence before and after)")
    assert label in daily_report(home, TUESDAY, "html")
    assert label not in facts(daily_report(home, WEDNESDAY))
    # Wednesday's report is the same, byte for byte, as before the rerun
    for fmt, content in first.items():
        assert (home.path / f"reports/daily/2026-07/shop_{WEDNESDAY}.{fmt}").read_bytes() == content, fmt


def test_the_spanish_report_says_it_in_spanish(rerun, tmp_path):
    home, _ = rerun
    settings = dataclasses.replace(load_settings(home.path), report_language="es")
    keys = [("shop", dt.date.fromisoformat(TUESDAY)), ("shop", dt.date.fromisoformat(WEDNESDAY))]
    with connect(settings.lake, read_only=True) as con:
        reports = daily_reports(settings, con, keys)
    for report in reports:
        write_report(report, tmp_path)
    tuesday = facts((tmp_path / f"daily/2026-07/shop_{TUESDAY}.csv").read_text(encoding="utf-8"))
    assert tuesday[LABELS["es"]["changed"]].startswith("la última ejecución de este día agregó 1 partida(s), retiró 1 y cambió 1 ")
    assert LABELS["es"]["changed"] not in facts((tmp_path / f"daily/2026-07/shop_{WEDNESDAY}.csv").read_text(encoding="utf-8"))


def test_an_unknown_store_is_a_usage_error(home, capsys):
    code, _, err = diff(home, capsys, TUESDAY, store="nowhere")
    assert code == 2 and "unknown store nowhere" in err
