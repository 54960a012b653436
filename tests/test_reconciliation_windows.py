"""Day-by-day runs see what a run over the whole range sees: references shared with orders of
other days, payments of other days, and the sentences finance reads."""

import datetime as dt

import duckdb


def test_a_shared_reference_is_owned_by_the_earlier_order_even_when_only_the_later_day_runs(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,
        a1,2026-07-15 09:00:00,pending,PEN,70.00,0.00,PagoEfectivo,,,
        """
    )
    home.statements("90000001,A1,,paid,PEN,50.00,,,2026-07-14T10:00:00-05:00,,2026-07-16T11:00:00-05:00,BCP,,,\n")
    home.run("2026-07-15", "2026-07-15")
    (later,) = home.items()
    assert (later["order_id"], later["status"], later["reason"], later["cip"]) == ("a1", "AWAITING_PAYMENT", "DUPLICATE_REFERENCE", None)
    assert "shared with order A1" in later["evidence"]
    home.run("2026-07-14", "2026-07-14")
    owner = [i for i in home.items() if i["order_id"] == "A1"]
    assert [(i["status"], i["cip"], i["difference_cents"]) for i in owner] == [("MATCHED", "90000001", 0)]


def test_a_payment_made_days_later_matches_its_order_and_is_no_orphan_of_its_own_day(home):
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,100.50,0.00,PagoEfectivo,,,\n")
    home.statements("90000001,A1,,paid,PEN,100.50,,,2026-07-14T10:01:00-05:00,,2026-07-17T19:45:00-05:00,BCP,,,\n")
    home.run("2026-07-17", "2026-07-17")
    assert home.items() == []
    home.run("2026-07-14", "2026-07-14")
    (item,) = home.items()
    assert (item["status"], item["business_date"]) == ("MATCHED", dt.date(2026, 7, 14))
    # A plain match's sentence is written by the view from the row itself.
    assert item["evidence"] == "CIP 90000001 paid PEN 100.50 on 2026-07-17 19:45 Lima, equal to the order total PEN 100.50."


def test_items_of_a_warehouse_written_before_recon_item_rows_are_kept_word_for_word(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,
        B1,2026-07-15 10:00:00,pending,PEN,20.00,0.00,PagoEfectivo,,,
        """
    )
    home.statements(
        """\
        90000001,A1,,paid,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        90000002,B1,,paid,PEN,20.00,,,2026-07-15T10:00:00-05:00,,2026-07-15T11:00:00-05:00,BCP,,,
        """
    )
    home.run("2026-07-14", "2026-07-15")
    # Turn the warehouse into the earlier layout: recon_items a table with every sentence stored.
    with duckdb.connect(str(home.path / "warehouse.duckdb")) as con:
        con.execute("CREATE TABLE old_items AS SELECT * REPLACE ('as written then: ' || evidence AS evidence) FROM recon_items")
        con.execute("DROP VIEW recon_items")
        con.execute("DROP TABLE recon_item_rows")
        con.execute("ALTER TABLE old_items RENAME TO recon_items")
        con.execute("DELETE FROM schema_version")  # written by the earlier version's DDL
    home.run("2026-07-15", "2026-07-15")
    kept, rerun = home.items()
    assert (kept["order_id"], kept["evidence"]) == ("A1", "as written then: CIP 90000001 paid PEN 10.00 on 2026-07-14 11:00 Lima, equal to the order total PEN 10.00.")
    assert (rerun["order_id"], rerun["evidence"]) == ("B1", "CIP 90000002 paid PEN 20.00 on 2026-07-15 11:00 Lima, equal to the order total PEN 20.00.")
    assert home.query("SELECT table_type FROM information_schema.tables WHERE table_name = 'recon_items'") == [{"table_type": "VIEW"}]
