"""A statement whose CIPs carry no reference (empty transaction_code) is new landing data like any
other: the landing sensor requests the days of its payments."""

import datetime as dt

from tests.test_orchestration import touched


def test_a_statement_of_cips_without_reference_touches_their_payment_days(home):
    home.orders("A1,2026-07-10 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements(
        "90000001,A1,,pending,PEN,50.00,,,2026-07-10T10:00:00-05:00,,,,,,\n"
        "90000002,,,paid,PEN,30.00,,,2026-07-12T10:00:00-05:00,,2026-07-14T21:00:00-05:00,BCP,,,\n"
    )
    assert touched(home, "statements/shop/statement.csv") == {
        "shop": [dt.date(2026, 7, 10), dt.date(2026, 7, 12), dt.date(2026, 7, 14)],
    }
