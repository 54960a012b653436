"""Month close: open items aged in Peru business days (weekends, holidays PE and decreed days off
skipped) up to the store's statement coverage, never the wall clock."""

from pagorecon_dagster.reports.language import Catalog
from tests.test_reports import assert_same_in_every_format, in_every_format, money

# June 2026: the 29th is a holiday (San Pedro y San Pablo) and the 23rd is decreed off below.
ORDERS = """\
M14,2026-05-14 12:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,
M15,2026-05-15 12:00:00,pending,PEN,20.00,0.00,PagoEfectivo,,,
J16,2026-06-16 12:00:00,pending,PEN,30.00,0.00,PagoEfectivo,,,
J17,2026-06-17 12:00:00,pending,PEN,40.00,0.00,PagoEfectivo,,,
J24,2026-06-24 12:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,
J25,2026-06-25 12:00:00,pending,PEN,60.00,0.00,PagoEfectivo,,,
J30,2026-06-30 12:00:00,pending,PEN,70.00,0.00,PagoEfectivo,,,
P30,2026-06-30 12:00:00,paid,PEN,5.00,0.00,PagoEfectivo,,,
"""
# the statements reach 2026-06-30 18:00 Lima: that is the close's "as of"
STATEMENTS = "90000001,P30,,paid,PEN,5.00,0.18,0.03,2026-06-30T12:01:00-05:00,,2026-06-30T18:00:00-05:00,BCP,,,\n"


def test_open_items_fall_in_their_business_day_age_buckets(home):
    home.config(stores=[{"id": "shop", "name": "Canonical Shop", "order_format": "canonical", "reference_field": "order_id"}],
                extra_non_working_days=["2026-06-23"])
    home.orders(ORDERS)
    home.statements(STATEMENTS)
    home.run("2026-05-14", "2026-06-30")
    t = Catalog("en")

    def bucket_row(r):
        return (r[t("col_currency")], r[t("col_bucket")], int(r[t("col_items")]), money(r[t("col_open_amount")]))

    june = in_every_format(home.path, "month_close/2026-06/shop_2026-06_close", "aging", t, bucket_row)
    assert_same_in_every_format(june, [("PEN", "0-2", 2, 13000), ("PEN", "3-7", 2, 9000), ("PEN", "8-30", 1, 3000),
                                       ("PEN", ">30", 0, 0), ("PEN", "Total", 5, 25000)])
    may = in_every_format(home.path, "month_close/2026-05/shop_2026-05_close", "aging", t, bucket_row)
    assert_same_in_every_format(may, [("PEN", "0-2", 0, 0), ("PEN", "3-7", 0, 0), ("PEN", "8-30", 1, 2000),
                                      ("PEN", ">30", 1, 1000), ("PEN", "Total", 2, 3000)])

    ages = in_every_format(home.path, "month_close/2026-06/shop_2026-06_close", "open_items", t,
                           lambda r: (r[t("col_order")], int(r[t("col_age")]), r[t("col_bucket")]))
    # J16: 17,18,19,22,24,25,26,30 = 8 business days; J17 one less; J24: 25,26,30; J25: 26,30
    assert_same_in_every_format(ages, [("J16", 8, "8-30"), ("J17", 7, "3-7"), ("J24", 3, "3-7"), ("J25", 2, "0-2"), ("J30", 0, "0-2")])
    may_ages = in_every_format(home.path, "month_close/2026-05/shop_2026-05_close", "open_items", t,
                               lambda r: (r[t("col_order")], int(r[t("col_age")])))
    # after May 15: 10 business days of May (18-22, 25-29) and 20 of June = 30; M14 one more
    assert_same_in_every_format(may_ages, [("M14", 31), ("M15", 30)])
    html = (home.path / "reports/month_close/2026-06/shop_2026-06_close.html").read_text(encoding="utf-8")
    assert "2026-06-30 (latest statement data for this store)" in html
    assert "<dt>Business days in the month</dt><dd>20</dd>" in html
