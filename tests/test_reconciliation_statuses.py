"""One scenario per status of docs/reconciliation.md: a few rows in, exact statuses and céntimos out."""

import datetime as dt
import json
from pagorecon_dagster.warehouse.duckdb import connect, home_lake


def only(items, **match):
    found = [i for i in items if all(i[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, items)
    return found[0]


def test_matched_to_the_centimo(home):
    home.orders("A1,2026-07-14 10:00:00,paid,PEN,100.50,0.00,PagoEfectivo,,ana@example.pe,12345678\n")
    home.statements("90000001,A1,OP1,paid,PEN,100.50,3.50,0.63,2026-07-14T10:01:00-05:00,,2026-07-14T12:00:00-05:00,BCP,DNI,12345678,ana@example.pe\n")
    home.run("2026-07-14", "2026-07-14")
    (item,) = home.items()
    assert (item["status"], item["reason"], item["cip"]) == ("MATCHED", None, "90000001")
    assert (item["order_total_cents"], item["paid_amount_cents"], item["difference_cents"]) == (10050, 10050, 0)
    assert item["refund_candidate"] is False


def test_fx_converted_within_tolerance_uses_last_published_sell_rate(home):
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,374.50,0.00,PagoEfectivo,,,\n")
    # paid on Saturday 2026-07-18: no rate that day; Friday's sell 3.745 applies
    home.statements("90000001,A1,,paid,USD,100.00,,,2026-07-14T10:00:00-05:00,,2026-07-18T11:00:00-05:00,BCP,DNI,12345678,\n")
    home.drop("fx/sbs.csv", "date,currency,buy,sell\n2026-07-16,USD,3.700,3.800\n2026-07-17,USD,3.740,3.745\n2026-07-20,USD,3.600,3.900\n")
    home.run("2026-07-14", "2026-07-14")
    (item,) = home.items()
    assert (item["status"], item["reason"]) == ("MATCHED", "FX_CONVERTED")
    assert item["difference_cents"] == 0
    assert "3.745" in item["evidence"] and "2026-07-17" in item["evidence"]


def test_currency_mismatch_outside_tolerance_and_without_rate(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,PEN,100.00,0.00,PagoEfectivo,,,
        A2,2026-07-14 10:00:00,pending,PEN,100.00,0.00,PagoEfectivo,,,
        """
    )
    home.statements(
        """\
        90000001,A1,,paid,USD,100.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        90000002,A2,,paid,USD,26.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        """
    )
    home.run("2026-07-14", "2026-07-14")
    items = home.items()
    assert only(items, order_id="A1")["status"] == "CURRENCY_MISMATCH"
    assert only(items, order_id="A1")["reason"] == "NO_FX_RATE"
    home.drop("fx/sbs.csv", "date,currency,buy,sell\n2026-07-13,USD,3.740,3.745\n")
    home.run("2026-07-14", "2026-07-14")
    items = home.items()
    a1, a2 = only(items, order_id="A1"), only(items, order_id="A2")
    assert (a1["status"], a1["reason"]) == ("CURRENCY_MISMATCH", "OUTSIDE_FX_TOLERANCE")
    assert a1["difference_cents"] == 37450 - 10000
    # 26.00 USD x 3.745 = 97.37 PEN: 2.63% below 100.00, outside 1%
    assert (a2["status"], a2["difference_cents"]) == ("CURRENCY_MISMATCH", 9737 - 10000)


def test_amount_mismatch_underpaid_and_overpaid(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,PEN,100.00,10.00,PagoEfectivo,,,
        A2,2026-07-14 10:00:00,pending,PEN,100.00,0.00,PagoEfectivo,,,
        """
    )
    home.statements(
        """\
        90000001,A1,,paid,PEN,90.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        90000002,A2,,paid,PEN,100.01,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        """
    )
    home.run("2026-07-14", "2026-07-14")
    items = home.items()
    under, over = only(items, order_id="A1"), only(items, order_id="A2")
    assert (under["status"], under["reason"], under["difference_cents"], under["refund_candidate"]) == ("AMOUNT_MISMATCH", "UNDERPAID", -1000, False)
    assert (over["status"], over["reason"], over["difference_cents"], over["refund_candidate"]) == ("AMOUNT_MISMATCH", "OVERPAID", 1, True)


def test_duplicate_payment_second_cip_on_its_own_row_dated_like_the_order(home):
    home.orders("A1,2026-07-14 10:00:00,paid,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements(
        """\
        90000002,A1,,paid,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-16T09:00:00-05:00,BCP,,,
        90000001,A1,,paid,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        """
    )
    home.run("2026-07-14", "2026-07-16")
    first, dup = home.items()
    assert (first["status"], first["cip"]) == ("MATCHED", "90000001")
    assert (dup["status"], dup["cip"], dup["refund_candidate"]) == ("DUPLICATE_PAYMENT", "90000002", True)
    assert dup["business_date"] == dt.date(2026, 7, 14) and dup["paid_amount_cents"] == 5000


def test_paid_cancelled_order_then_duplicates(home):
    home.orders("A1,2026-07-14 10:00:00,cancelled,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements(
        """\
        90000001,A1,,paid,PEN,40.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        90000002,A1,,paid,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,
        """
    )
    home.run("2026-07-14", "2026-07-14")
    first, dup = home.items()
    assert (first["status"], first["cip"], first["refund_candidate"], first["paid_amount_cents"]) == ("PAID_CANCELLED_ORDER", "90000001", True, 4000)
    assert (dup["status"], dup["cip"]) == ("DUPLICATE_PAYMENT", "90000002")


def test_orphan_payment_and_payment_for_an_order_paid_otherwise(home):
    home.orders("C1,2026-07-14 10:00:00,paid,PEN,80.00,0.00,Visa card,,,\n")
    home.statements(
        """\
        90000001,NOPE-9,,paid,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-15T20:30:00-05:00,BCP,,,
        90000002,c1,,paid,PEN,80.00,,,2026-07-14T10:00:00-05:00,,2026-07-15T09:00:00-05:00,BCP,,,
        90000003,GONE,,reversed,PEN,80.00,,,2026-07-14T10:00:00-05:00,,2026-07-15T09:00:00-05:00,BCP,,,
        """
    )
    home.run("2026-07-14", "2026-07-16")
    items = home.items()
    assert len(items) == 2  # the other-method order itself and the reversed orphan give no row
    orphan, twice = only(items, cip="90000001"), only(items, cip="90000002")
    assert (orphan["status"], orphan["refund_candidate"], orphan["business_date"]) == ("ORPHAN_PAYMENT", False, dt.date(2026, 7, 15))
    assert (twice["status"], twice["reason"], twice["refund_candidate"]) == ("ORPHAN_PAYMENT", "ORDER_PAID_OTHER_METHOD", True)


def test_reversed_payment_leaves_order_reversed(home):
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements("90000001,A1,,paid,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,\n", name="d1.csv")
    home.statements("90000001,A1,,592,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,\n", name="d2.csv")
    home.run("2026-07-14", "2026-07-14")
    (item,) = home.items()
    assert (item["status"], item["cip"], item["paid_amount_cents"]) == ("REVERSED", "90000001", None)


def test_missing_payment_only_after_grace_business_days_covered(home):
    # Wed 2026-07-22; Thu 23 is a holiday: grace days are Fri 24 and Mon 27.
    home.orders("A1,2026-07-22 10:00:00,paid,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements("90000009,OTHER,,pending,PEN,5.00,,,2026-07-26T10:00:00-05:00,,,BCP,,,\n", name="d1.csv")
    home.run("2026-07-22", "2026-07-22")
    (item,) = home.items()
    assert (item["status"], item["reason"]) == ("AWAITING_PAYMENT", "WITHIN_GRACE")
    home.statements("90000010,OTHER2,,pending,PEN,5.00,,,2026-07-27T08:00:00-05:00,,,BCP,,,\n", name="d2.csv")
    home.run("2026-07-22", "2026-07-22")
    (item,) = home.items()
    assert item["status"] == "MISSING_PAYMENT"
    assert "2026-07-27" in item["evidence"]


def test_expired_unpaid_by_state_or_by_expiry_before_coverage(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,
        A2,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,
        A3,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,
        """
    )
    home.statements(
        """\
        90000001,A1,,expired,PEN,50.00,,,2026-07-14T10:00:00-05:00,2026-07-15T10:00:00-05:00,,BCP,,,
        90000002,A2,,pending,PEN,50.00,,,2026-07-14T10:00:00-05:00,2026-07-15T10:00:00-05:00,,BCP,,,
        90000003,A3,,pending,PEN,50.00,,,2026-07-14T10:00:00-05:00,2026-07-30T10:00:00-05:00,,BCP,,,
        90000004,ZZ,,pending,PEN,1.00,,,2026-07-16T10:00:00-05:00,,,BCP,,,
        """
    )
    home.run("2026-07-14", "2026-07-14")
    items = home.items()
    assert (only(items, order_id="A1")["status"], only(items, order_id="A1")["reason"]) == ("EXPIRED_UNPAID", "CIP_EXPIRED")
    assert only(items, order_id="A2")["status"] == "EXPIRED_UNPAID"
    assert (only(items, order_id="A3")["status"], only(items, order_id="A3")["cip"]) == ("AWAITING_PAYMENT", "90000003")


def test_awaiting_and_cancelled_unpaid(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,
        A2,2026-07-14 10:00:00,cancelled,PEN,50.00,0.00,PagoEfectivo,,,
        """
    )
    home.run("2026-07-14", "2026-07-14")
    items = home.items()
    assert (only(items, order_id="A1")["status"], only(items, order_id="A1")["cip"]) == ("AWAITING_PAYMENT", None)
    assert only(items, order_id="A2")["status"] == "CANCELLED_UNPAID"


def test_payment_at_1930_lima_lands_on_that_lima_day(home):
    home.statements("90000001,NOORDER,,paid,PEN,10.00,,,2026-07-14T19:00:00-05:00,,2026-07-14T19:30:00-05:00,BCP,,,\n")
    home.statements("90000002,NOORDER2,,paid,PEN,10.00,,,2026-07-14 19:00:00,,2026-07-14 23:59:59,BCP,,,\n", name="naive.csv")
    home.statements("90000003,NOORDER3,,paid,PEN,10.00,,,2026-07-15T00:10:00Z,,2026-07-15T00:30:00Z,BCP,,,\n", name="utc.csv")
    home.run("2026-07-13", "2026-07-16")
    assert {i["cip"]: i["business_date"] for i in home.items()} == {
        "90000001": dt.date(2026, 7, 14), "90000002": dt.date(2026, 7, 14), "90000003": dt.date(2026, 7, 14),
    }


def test_summary_sums_items(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,
        A2,2026-07-14 10:00:00,pending,PEN,25.00,0.00,PagoEfectivo,,,
        A3,2026-07-14 10:00:00,pending,USD,10.00,0.00,PagoEfectivo,,,
        """
    )
    home.statements(
        """\
        90000001,A1,,paid,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        90000002,A2,,paid,PEN,25.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        """
    )
    home.run("2026-07-14", "2026-07-14")
    rows = home.query("SELECT currency, status, items, order_total_cents, paid_amount_cents, refunded_cents FROM recon_daily_summary ORDER BY ALL")
    assert rows == [
        {"currency": "PEN", "status": "MATCHED", "items": 2, "order_total_cents": 7500, "paid_amount_cents": 7500, "refunded_cents": 0},
        {"currency": "USD", "status": "AWAITING_PAYMENT", "items": 1, "order_total_cents": 1000, "paid_amount_cents": 0, "refunded_cents": 0},
    ]


def test_a_paid_cip_without_reference_is_its_own_orphan_dated_by_its_payment(home):
    from pagorecon_dagster.reports.evidence import evidence_in

    home.orders("A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements(
        """\
        90000001,A1,,paid,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        90000002,,,paid,PEN,30.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T22:30:00-05:00,BCP,,,
        90000003,,,paid,USD,12.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,
        90000004,,,pending,PEN,99.00,,,2026-07-14T10:00:00-05:00,,,,,,
        90000005,#,,reversed,PEN,15.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,
        """
    )
    # the same through the JSON path: a notification with no transactionCode, a CIP search reply with an empty one
    home.drop("statements/shop/notification.json", json.dumps(
        {"eventType": "cip.paid", "operationNumber": "OP-7",
         "data": {"cip": "90000006", "currency": "PEN", "amount": "7.00", "paymentDate": "2026-07-14T13:00:00-05:00"}}))
    home.drop("statements/shop/search.json", json.dumps([
        {"cip": "90000007", "transactionCode": "", "amount": "8.00", "currency": "PEN", "status": 23,
         "dateCreation": "2026-07-14T10:00:00-05:00", "datePayment": "2026-07-14T14:00:00-05:00"}]))
    home.run("2026-07-14", "2026-07-15")
    assert home.query("SELECT * FROM quarantine") == []
    items = home.items()
    assert only(items, order_id="A1")["status"] == "MATCHED"
    orphans = {i["cip"]: i for i in items if i["status"] == "ORPHAN_PAYMENT"}
    assert sorted(orphans) == ["90000002", "90000003", "90000006", "90000007"]  # pending and reversed give no row
    assert {i["status"] for i in items} == {"MATCHED", "ORPHAN_PAYMENT"}  # no DUPLICATE_PAYMENT among them
    assert {cip: (i["reason"], i["paid_currency"], i["paid_amount_cents"], i["difference_cents"], i["refund_candidate"],
                  i["order_id"], i["business_date"]) for cip, i in orphans.items()} == {
        "90000002": ("NO_REFERENCE", "PEN", 3000, 3000, False, None, dt.date(2026, 7, 14)),  # 03:30 UTC the next day
        "90000003": ("NO_REFERENCE", "USD", 1200, 1200, False, None, dt.date(2026, 7, 14)),
        "90000006": ("NO_REFERENCE", "PEN", 700, 700, False, None, dt.date(2026, 7, 14)),
        "90000007": ("NO_REFERENCE", "PEN", 800, 800, False, None, dt.date(2026, 7, 14)),
    }
    evidence = orphans["90000002"]["evidence"]
    assert evidence == (
        "CIP 90000002 paid PEN 30.00 on 2026-07-14 22:30 Lima; the CIP carried no reference (transaction code), "
        "so no order can be linked to it; a person must decide."
    )
    (stored,) = home.query("SELECT evidence_code, evidence_args FROM recon_items WHERE cip = '90000002'")
    assert evidence_in("es", stored["evidence_code"], stored["evidence_args"], evidence) == (
        "El CIP 90000002 pagó PEN 30.00 el 2026-07-14 22:30 Lima; el CIP no trae referencia (código de transacción), "
        "así que no se puede vincular a ningún pedido; debe decidirlo una persona."
    )
    assert home.query("SELECT reference FROM recon_items WHERE cip = '90000002'") == [{"reference": None}]


def test_a_cip_without_reference_restated_with_one_leaves_the_orphans_and_back(home):
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements(
        """\
        90000001,A1,,paid,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        90000002,,,paid,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,
        90000003,,,paid,PEN,20.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,
        """,
        name="d1.csv",
    )
    home.run("2026-07-14", "2026-07-14")
    assert {(i["cip"], i["status"], i["reason"]) for i in home.items()} == {
        ("90000001", "MATCHED", None), ("90000002", "ORPHAN_PAYMENT", "NO_REFERENCE"), ("90000003", "ORPHAN_PAYMENT", "NO_REFERENCE"),
    }
    # a later statement gives 90000002 its reference and takes 90000001's away (the run's checks recount the references)
    home.statements(
        """\
        90000002,a1,,paid,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,
        90000001,,,paid,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        """,
        name="d2.csv",
    )
    home.run("2026-07-14", "2026-07-14")
    assert {(i["cip"], i["status"], i["reason"]) for i in home.items()} == {
        ("90000002", "MATCHED", None), ("90000001", "ORPHAN_PAYMENT", "NO_REFERENCE"), ("90000003", "ORPHAN_PAYMENT", "NO_REFERENCE"),
    }


def test_summary_keeps_each_paid_currency_apart(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,PEN,380.00,0.00,PagoEfectivo,,,
        A2,2026-07-14 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,
        A3,2026-07-14 10:00:00,pending,PEN,40.00,0.00,PagoEfectivo,,,
        """
    )
    home.statements(
        """\
        90000001,A1,,paid,USD,100.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        90000002,A2,,paid,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        """
    )
    home.drop("fx/sbs.csv", "date,currency,buy,sell\n2026-07-14,USD,3.750,3.800\n")
    home.run("2026-07-14", "2026-07-14")
    rows = home.query(
        "SELECT currency, paid_currency, status, items, order_total_cents, paid_amount_cents FROM recon_daily_summary ORDER BY ALL"
    )
    # the USD céntimos of the FX-converted payment are never added to PEN céntimos
    assert rows == [
        {"currency": "PEN", "paid_currency": "PEN", "status": "MATCHED", "items": 1, "order_total_cents": 1000, "paid_amount_cents": 1000},
        {"currency": "PEN", "paid_currency": "USD", "status": "MATCHED", "items": 1, "order_total_cents": 38000, "paid_amount_cents": 10000},
        {"currency": "PEN", "paid_currency": None, "status": "AWAITING_PAYMENT", "items": 1, "order_total_cents": 4000, "paid_amount_cents": 0},
    ]


def test_a_summary_of_the_older_grain_is_summed_again_from_its_items(home):
    import duckdb

    home.orders("A1,2026-07-14 10:00:00,pending,PEN,380.00,0.00,PagoEfectivo,,,\nA2,2026-07-14 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\n")
    home.statements(
        """\
        90000001,A1,,paid,USD,100.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        90000002,A2,,paid,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        """
    )
    home.drop("fx/sbs.csv", "date,currency,buy,sell\n2026-07-14,USD,3.750,3.800\n")
    home.run("2026-07-14", "2026-07-14")
    home.as_legacy_file(  # an earlier version's single-file warehouse, summarized as it did
        """CREATE OR REPLACE TABLE recon_daily_summary AS
           SELECT store_id, business_date, coalesce(order_currency, paid_currency) AS currency, status, count(*) AS items,
                  sum(order_total_cents) AS order_total_cents, sum(paid_amount_cents) AS paid_amount_cents,
                  sum(refunded_cents) AS refunded_cents
           FROM recon_items GROUP BY ALL""",
        "DROP TABLE schema_migrations",  # an earlier version had none
    )
    home.run("2026-07-20", "2026-07-20")  # moved into the lake, then another day: the 14th is not reconciled again
    assert home.query(
        "SELECT business_date, currency, paid_currency, status, items, paid_amount_cents FROM recon_daily_summary ORDER BY ALL"
    ) == [
        {"business_date": dt.date(2026, 7, 14), "currency": "PEN", "paid_currency": "PEN", "status": "MATCHED", "items": 1, "paid_amount_cents": 1000},
        {"business_date": dt.date(2026, 7, 14), "currency": "PEN", "paid_currency": "USD", "status": "MATCHED", "items": 1, "paid_amount_cents": 10000},
    ]
