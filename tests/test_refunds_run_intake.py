"""`pagorecon run` takes refunds in: requests dropped in landing/refunds/<store>/ and proposals
from the day's refund candidates become refunds in the same run, before the day's alerts, so
REFUND_RATE_HIGH sees them. Paying out stays in the separate `refund_payout` job."""

from __future__ import annotations

import dagster as dg
from conftest import STATEMENT_HEADER
from refunds_fixtures import REQUEST_HEADER

from pagorecon_dagster.cli import main
from pagorecon_dagster.config import load_settings
from pagorecon_dagster.definitions import MAIN_JOB, build_definitions

DAY = "2026-07-14"


def cip(number, ref, amount, doc, paid_at="2026-07-14T10:00:00-05:00"):
    return f"{number},{ref},,paid,PEN,{amount},,,2026-07-14T09:30:00-05:00,,{paid_at},BCP,DNI,{doc},\n"


def drop_day(home) -> None:
    """Ten orders paid on the 14th: one paid twice (PEN 100.00, within the limit), one cancelled
    but paid (PEN 200.00, above it), eight matched; and one request for PEN 10.00 of M1."""
    home.orders(
        "D1,2026-07-14 09:00:00,paid,PEN,100.00,0.00,PagoEfectivo,,,\n"
        "C1,2026-07-14 09:00:00,cancelled,PEN,200.00,0.00,PagoEfectivo,,,\n"
        + "".join(f"M{n},2026-07-14 09:00:00,paid,PEN,50.00,0.00,PagoEfectivo,,,\n" for n in range(1, 9))
    )
    home.drop("statements/shop/statement.csv", STATEMENT_HEADER + "\n" + "".join([
        cip("91000001", "D1", "100.00", "41111111"),
        cip("91000002", "D1", "100.00", "41111111", paid_at="2026-07-14T11:00:00-05:00"),
        cip("91000003", "C1", "200.00", "42222222"),
        *(cip(f"9200000{n}", f"M{n}", "50.00", f"5{n}{n}{n}{n}{n}{n}{n}") for n in range(1, 9)),
    ]), dedent=False)
    home.drop("refunds/shop/requests.csv", REQUEST_HEADER
              + "R-1,M1,92000001,10.00,PEN,damaged,2026-07-14 15:00:00,ana@tienda.pe,51111111,00212345678901234567\n",
              dedent=False)


EXPECTED = {
    "auto-shop-91000002-duplicate_payment": ("approved", "reconciliation"),          # PEN 100.00 <= PEN 150.00
    "auto-shop-91000003-paid_cancelled_order": ("awaiting_approval", "reconciliation"),  # PEN 200.00 > PEN 150.00
    "shop-R-1": ("awaiting_approval", "request"),                                     # a request waits for a person
}


def test_a_run_takes_the_days_refunds_in_and_its_alerts_see_them(home):
    drop_day(home)
    home.run(DAY, DAY)
    refunds = {r["refund_id"]: (r["status"], r["source"]) for r in home.query("SELECT * FROM refunds")}
    assert refunds == EXPECTED
    (alert,) = home.query("SELECT * FROM alerts WHERE kind = 'REFUND_RATE_HIGH'")
    assert (alert["alert_id"], alert["value"], alert["threshold"]) == ("REFUND_RATE_HIGH|shop|2026-07-14", "38.8%", "5%")
    # 3 of 11 payments by count (27.3%); PEN 310.00 of PEN 800.00 by amount (38.8%)
    assert alert["message"].startswith("Refunds asked for 3 of 11 payments reconciled on 2026-07-14")
    # a second run takes nothing in twice
    home.run(DAY, DAY)
    assert {r["refund_id"]: (r["status"], r["source"]) for r in home.query("SELECT * FROM refunds")} == EXPECTED
    assert home.query("SELECT count(*) AS n FROM audit_log WHERE action = 'create'")[0]["n"] == 3


def test_the_cli_run_takes_refunds_in_and_paying_out_stays_a_separate_job(home, capsys):
    drop_day(home)
    assert main(["--home", str(home.path), "run", "--start", DAY, "--end", DAY, "--store", "shop"]) == 0
    assert {r["refund_id"]: (r["status"], r["source"]) for r in home.query("SELECT * FROM refunds")} == EXPECTED
    assert home.query("SELECT count(*) AS n FROM refunds WHERE status IN ('submitted', 'paid')")[0]["n"] == 0
    definitions = build_definitions(load_settings(home.path))
    main_assets = definitions.resolve_job_def(MAIN_JOB).asset_layer.executable_asset_keys
    payout_assets = definitions.resolve_job_def("refund_payout").asset_layer.executable_asset_keys
    assert dg.AssetKey("refunds") in main_assets and dg.AssetKey("refund_payouts") not in main_assets
    assert payout_assets == {dg.AssetKey("refund_payouts")}
