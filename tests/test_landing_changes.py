"""What a landing file changes, beyond its own rows' days (docs/operations.md, The landing sensor):
a restated order leaves its old day, a new SBS rate changes the payments it converts, a refund
request touches the item it refunds, and coverage moving past a CIP's expiry changes its order."""

import datetime as dt

from pagorecon_dagster.partitions import range_tags
from tests.test_orchestration import STATEMENT, execute, ranges, tick, touched

D = dt.date.fromisoformat
REQUEST_HEADER = "refund_id,order_id,cip,amount,currency,reason,requested_at,requested_by,beneficiary_document,beneficiary_account\n"


def run_all(home, result) -> None:
    for request in result.run_requests:
        execute(home, request.tags)


def test_a_restated_order_requests_the_day_it_leaves_and_the_day_it_moves_to(home):
    home.orders("R1,2026-07-10 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n")
    first = tick(home)
    run_all(home, first)
    assert [(i["order_id"], i["business_date"]) for i in home.items()] == [("R1", D("2026-07-10"))]

    home.orders("R1,2026-07-12 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n", name="restated.csv")
    assert touched(home, "orders/shop/restated.csv") == {"shop": [D("2026-07-10"), D("2026-07-12")]}
    late = tick(home, cursor=first.cursor)
    assert ranges(late) == [
        (range_tags(["shop"], D("2026-07-10"), D("2026-07-10")), "landing_files"),
        (range_tags(["shop"], D("2026-07-12"), D("2026-07-12")), "landing_files"),
    ]
    run_all(home, late)
    assert [(i["order_id"], i["business_date"]) for i in home.items()] == [("R1", D("2026-07-12"))]


def test_a_new_rate_requests_the_days_of_the_payments_it_converts_until_the_next_known_rate(home):
    home.orders("U1,2026-07-14 10:00:00,paid,USD,10.00,0.00,PagoEfectivo,,,\n"
                "U2,2026-07-17 10:00:00,paid,USD,20.00,0.00,PagoEfectivo,,,\n")
    home.statements("\n".join([
        STATEMENT.format(cip="90000001", ref="U1", amount="37.45", created="2026-07-14T10:01:00-05:00", paid="2026-07-15T10:00:00-05:00"),
        STATEMENT.format(cip="90000002", ref="U2", amount="74.90", created="2026-07-17T10:01:00-05:00", paid="2026-07-17T11:00:00-05:00"),
    ]) + "\n")
    home.drop("fx/sbs_0716.csv", "date,currency,buy,sell\n2026-07-16,USD,3.740,3.745\n")
    first = tick(home)
    run_all(home, first)
    before = {i["order_id"]: (i["status"], i["reason"]) for i in home.items()}
    assert before == {"U1": ("CURRENCY_MISMATCH", "NO_FX_RATE"), "U2": ("MATCHED", "FX_CONVERTED")}

    # the rate of the 14th serves the payment of the 15th, not the one of the 17th (the 16th's rate does)
    home.drop("fx/sbs_0714.csv", "date,currency,buy,sell\n2026-07-14,USD,3.740,3.745\n")
    assert touched(home, "fx/sbs_0714.csv") == {"shop": [D("2026-07-14"), D("2026-07-15")]}
    late = tick(home, cursor=first.cursor)
    assert ranges(late) == [(range_tags(["shop"], D("2026-07-14"), D("2026-07-15")), "landing_files")]
    run_all(home, late)
    assert {i["order_id"]: (i["status"], i["reason"]) for i in home.items()}["U1"] == ("MATCHED", "FX_CONVERTED")


def test_a_refund_request_requests_its_own_day_and_the_day_of_the_item_it_refunds(home):
    home.orders("M1,2026-07-13 10:00:00,paid,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements("\n".join([
        STATEMENT.format(cip="90000001", ref="M1", amount="50.00", created="2026-07-13T10:01:00-05:00", paid="2026-07-13T11:00:00-05:00"),
        STATEMENT.format(cip="90000009", ref="Z9", amount="5.00", created="2026-07-16T09:00:00-05:00", paid="2026-07-16T10:00:00-05:00"),
    ]) + "\n")
    first = tick(home)
    run_all(home, first)
    home.drop("refunds/shop/requests.csv", REQUEST_HEADER
              + "R-1,#m1,90000001,10.00,PEN,damaged,2026-07-20 15:00:00,ana@tienda.pe,51111111,00212345678901234567\n"
              + "R-2,Z9,90000009,5.00,PEN,unknown,2026-07-20 16:00:00,ana@tienda.pe,51111111,00212345678901234567\n",
              dedent=False)
    assert touched(home, "refunds/shop/requests.csv") == {"shop": [D("2026-07-13"), D("2026-07-16"), D("2026-07-20")]}
    late = tick(home, cursor=first.cursor)
    assert ranges(late) == [
        (range_tags(["shop"], D("2026-07-13"), D("2026-07-13")), "landing_files"),
        (range_tags(["shop"], D("2026-07-16"), D("2026-07-16")), "landing_files"),
        (range_tags(["shop"], D("2026-07-20"), D("2026-07-20")), "landing_files"),
    ]


def test_coverage_passing_a_cips_expiry_requests_its_orders_day(home):
    home.orders("E1,2026-07-10 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements(
        "90000001,E1,,pending,PEN,50.00,,,2026-07-10T10:01:00-05:00,2026-07-12T10:00:00-05:00,,,,,\n"
        + STATEMENT.format(cip="90000002", ref="X2", amount="5.00", created="2026-07-11T09:00:00-05:00", paid="2026-07-11T10:00:00-05:00") + "\n"
    )
    first = tick(home)
    run_all(home, first)
    assert {i["order_id"]: i["status"] for i in home.items() if i["order_id"]} == {"E1": "AWAITING_PAYMENT"}

    home.statements(STATEMENT.format(cip="90000003", ref="X3", amount="5.00", created="2026-07-13T09:00:00-05:00",
                                     paid="2026-07-13T10:00:00-05:00") + "\n", name="later.csv")
    assert touched(home, "statements/shop/later.csv") == {"shop": [D("2026-07-10"), D("2026-07-13")]}
    late = tick(home, cursor=first.cursor)
    assert ranges(late) == [
        (range_tags(["shop"], D("2026-07-10"), D("2026-07-10")), "landing_files"),
        (range_tags(["shop"], D("2026-07-13"), D("2026-07-13")), "landing_files"),
    ]
    run_all(home, late)
    assert {i["order_id"]: i["status"] for i in home.items() if i["order_id"]} == {"E1": "EXPIRED_UNPAID"}


def test_the_grace_days_configured_decide_which_order_days_coverage_changes(home):
    """Wednesday's order marked paid: with 1 grace business day, a statement reaching Thursday makes it
    MISSING_PAYMENT and its day is requested; with 2 it still waits and its day is not."""
    requested = {}
    for grace in (1, 2):
        home.config(missing_payment_grace_business_days=grace)
        for path in (home.path / "landing").rglob("*.csv"):
            path.unlink()
        home.forget_warehouse()
        home.orders("G1,2026-07-15 10:00:00,paid,PEN,10.00,0.00,PagoEfectivo,,,\n")
        home.statements(STATEMENT.format(cip="90000001", ref="X0", amount="10.00", created="2026-07-15T09:00:00-05:00",
                                         paid="2026-07-15T12:00:00-05:00") + "\n")
        first = tick(home)
        run_all(home, first)
        home.statements(STATEMENT.format(cip="90000002", ref="X1", amount="10.00", created="2026-07-16T09:00:00-05:00",
                                         paid="2026-07-16T12:00:00-05:00") + "\n", name="thursday.csv")
        late = tick(home, cursor=first.cursor)
        requested[grace] = ranges(late)
        run_all(home, late)
        assert {i["order_id"]: i["status"] for i in home.items() if i["order_id"]} == {
            "G1": "MISSING_PAYMENT" if grace == 1 else "AWAITING_PAYMENT"}
    assert requested == {
        1: [(range_tags(["shop"], D("2026-07-15"), D("2026-07-16")), "landing_files")],
        2: [(range_tags(["shop"], D("2026-07-16"), D("2026-07-16")), "landing_files")],
    }
