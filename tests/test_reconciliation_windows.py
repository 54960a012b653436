"""Day-by-day runs see what a run over the whole range sees: references shared with orders of
other days, payments of other days, and the sentences finance reads."""

import datetime as dt

import duckdb

from pagorecon_dagster.warehouse.duckdb import connect, home_lake


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
    # An earlier version's single-file warehouse: recon_items a table with every sentence stored.
    home.as_legacy_file(
        "CREATE TABLE old_items AS SELECT * EXCLUDE (evidence_code, evidence_args, provisional) "
        "REPLACE ('as written then: ' || evidence AS evidence) FROM recon_items",
        "DROP VIEW recon_items",
        "DROP TABLE recon_item_rows",
        "ALTER TABLE old_items RENAME TO recon_items",
        "DELETE FROM schema_version",  # written by the earlier version's DDL
        "DROP TABLE schema_migrations",  # an earlier version had none
    )
    home.run("2026-07-15", "2026-07-15")  # moves it into the lake first, then reruns one day
    kept, rerun = home.items()
    assert (kept["order_id"], kept["evidence"]) == ("A1", "as written then: CIP 90000001 paid PEN 10.00 on 2026-07-14 11:00 Lima, equal to the order total PEN 10.00.")
    assert (rerun["order_id"], rerun["evidence"]) == ("B1", "CIP 90000002 paid PEN 20.00 on 2026-07-15 11:00 Lima, equal to the order total PEN 20.00.")
    assert home.query("SELECT table_type FROM information_schema.tables WHERE table_name = 'recon_items' AND table_catalog = current_database()") == [{"table_type": "VIEW"}]


def test_items_written_before_evidence_codes_keep_their_sentences_until_their_day_is_rerun(home):
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,10.00,0.00,PagoEfectivo,,,\nB1,2026-07-14 10:00:00,pending,PEN,20.00,0.00,PagoEfectivo,,,\n"
                "C1,2026-07-15 10:00:00,pending,PEN,30.00,0.00,PagoEfectivo,,,\n")
    home.statements("90000001,A1,,paid,PEN,10.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,\n"
                    "90000003,C1,,paid,PEN,31.00,,,2026-07-15T10:00:00-05:00,,2026-07-15T11:00:00-05:00,BCP,,,\n")
    home.run("2026-07-14", "2026-07-15")
    # An earlier version's single-file warehouse: every sentence but a plain match's stored as text,
    # no code, no values.
    home.as_legacy_file(
        "UPDATE recon_item_rows SET evidence_detail = 'as written then: ' || evidence_en(evidence_code, evidence_args) "
        "WHERE evidence_args IS NOT NULL",
        "DROP VIEW recon_items",
        "ALTER TABLE recon_item_rows DROP COLUMN evidence_code",
        "ALTER TABLE recon_item_rows DROP COLUMN evidence_args",
        "ALTER TABLE recon_item_rows DROP COLUMN provisional",
        "CREATE VIEW recon_items AS SELECT * EXCLUDE (evidence_detail), evidence_detail AS evidence FROM recon_item_rows",
        "DELETE FROM schema_version",  # written by the earlier version's DDL
        "DELETE FROM schema_migrations WHERE name IN ('0006_evidence_code_and_values', '0007_provisional_items')",  # it had not had them
    )
    # Moved into the lake by this version's first open, before any rerun: its view, with the codes it can give.
    with connect(home_lake(home.path)) as con:
        assert con.execute("SELECT order_id, evidence_code, evidence FROM recon_items ORDER BY order_id").fetchall() == [
            ("A1", "PAID_IN_FULL", "CIP 90000001 paid PEN 10.00 on 2026-07-14 11:00 Lima, equal to the order total PEN 10.00."),
            ("B1", None, "as written then: No CIP for reference B1 appears in the statements yet."),
            ("C1", None, "as written then: CIP 90000003 paid PEN 31.00 on 2026-07-15 11:00 Lima against the order total PEN 30.00: overpaid by PEN 1.00."),
        ]
    home.run("2026-07-15", "2026-07-15")
    assert [(i["order_id"], i["evidence"]) for i in home.items()] == [
        ("A1", "CIP 90000001 paid PEN 10.00 on 2026-07-14 11:00 Lima, equal to the order total PEN 10.00."),
        ("B1", "as written then: No CIP for reference B1 appears in the statements yet."),
        ("C1", "CIP 90000003 paid PEN 31.00 on 2026-07-15 11:00 Lima against the order total PEN 30.00: overpaid by PEN 1.00."),
    ]
    assert home.query("SELECT order_id, evidence_code FROM recon_items ORDER BY order_id") == [
        {"order_id": "A1", "evidence_code": "PAID_IN_FULL"}, {"order_id": "B1", "evidence_code": None},
        {"order_id": "C1", "evidence_code": "OVERPAID"}]

def test_every_window_gives_the_rows_a_run_over_the_whole_range_gives_for_its_store_days(tmp_path, monkeypatch):
    """A daily run and a run over the whole range agree, row for row, on the days they share: shared
    references, payments of other days and orphans are judged the same whatever the window, and
    whether a window is written whole or store by store."""
    from conftest import load_sandbox
    from pagorecon_dagster.reconciliation import models
    from pagorecon_dagster.reconciliation.models import Window, reconcile
    from pagorecon_dagster.warehouse.duckdb import connect, model_sql, set_variables

    sandbox, settings = load_sandbox(tmp_path, stores=2, days=8)
    whole = Window(tuple(sandbox.store_ids), sandbox.start, sandbox.end)
    windows = [Window((store,), day, day) for store in sandbox.store_ids
               for day in (sandbox.start + dt.timedelta(days=n) for n in range(8))]
    windows += [Window(tuple(sandbox.store_ids), sandbox.start, sandbox.start + dt.timedelta(days=2))]
    with connect(settings.lake) as con:
        set_variables(con, whole.variables(settings))
        con.execute(f"CREATE TEMP TABLE whole_items AS {model_sql('recon_item_rows')}")
        statuses = {s for (s,) in con.execute("SELECT DISTINCT status FROM whole_items").fetchall()}
        assert {"MATCHED", "DUPLICATE_PAYMENT", "ORPHAN_PAYMENT", "AWAITING_PAYMENT"} <= statuses
        seen = 0
        for window in windows:
            set_variables(con, window.variables(settings))
            con.execute(f"CREATE OR REPLACE TEMP TABLE window_items AS {model_sql('recon_item_rows')}")
            con.execute("CREATE OR REPLACE TEMP TABLE expected AS FROM whole_items WHERE in_window(store_id, business_date)")
            for a, b in (("window_items", "expected"), ("expected", "window_items")):
                assert con.execute(f"SELECT count(*) FROM (FROM {a} EXCEPT ALL FROM {b})").fetchone()[0] == 0, (window, a)
            seen += con.execute("SELECT count(*) FROM window_items").fetchone()[0]
        assert seen > 0

        # reconcile() writes a small window in one statement and a big one store by store: the
        # same rows as the model over all stores either way
        for one_statement_rows in (models.ONE_STATEMENT_ROWS, 0):
            monkeypatch.setattr(models, "ONE_STATEMENT_ROWS", one_statement_rows)
            assert reconcile(con, settings, whole) == con.execute("SELECT count(*) FROM whole_items").fetchone()[0]
            for a, b in (("recon_item_rows", "whole_items"), ("whole_items", "recon_item_rows")):
                assert con.execute(f"SELECT count(*) FROM (FROM {a} EXCEPT ALL FROM {b})").fetchone()[0] == 0, a


def test_the_invariants_hold_over_the_runs_window_and_over_everything_when_run_alone(home):
    """A day reconciled earlier is not re-judged against an order that arrived since (it is, once
    rerun); checked alone, with no run window, the invariant looks at every reconciled day."""
    from pagorecon_dagster.config import load_settings
    from pagorecon_dagster.reconciliation.checks import each_order_once
    from pagorecon_dagster.warehouse.duckdb import connect

    home.orders("A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n", name="a.csv")
    home.run("2026-07-14", "2026-07-14")
    home.orders("A2,2026-07-14 11:00:00,pending,PEN,60.00,0.00,PagoEfectivo,,,\n", name="b.csv")
    result = home.run("2026-07-15", "2026-07-15")  # conftest: every check of the run passed
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "each_order_once"]
    assert check.metadata["scope"].value == "shop, shopi 2026-07-15..2026-07-15"

    settings = load_settings(home.path)
    with connect(settings.lake) as con:
        alone = each_order_once(con, settings)
    assert not alone.passed and alone.metadata["orders_missing"].value == [["shop", "A2", "2026-07-14"]]
    assert alone.metadata["scope"].value == "everything reconciled so far"
    home.run("2026-07-14", "2026-07-14")
    with connect(settings.lake) as con:
        assert each_order_once(con, settings).passed


def test_reference_counts_that_drift_from_the_orders_and_cips_fail_their_check_until_recounted(home):
    from pagorecon_dagster.config import load_settings
    from pagorecon_dagster.reconciliation.checks import counts_match_a_recount
    from pagorecon_dagster.reconciliation.models import Window, reference_count_drift
    from pagorecon_dagster.warehouse.duckdb import connect, set_variables

    # orders of earlier days: 07-14 and 07-11 each hold a seventh of them, so a check of one of
    # those days recounts only that day's references (reference_count_drift)
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n"
                "C1,2026-07-11 10:00:00,pending,PEN,5.00,0.00,PagoEfectivo,,,\n"
                + "".join(f"B{n},2026-07-10 10:00:00,pending,PEN,5.00,0.00,PagoEfectivo,,,\n" for n in range(5)))
    home.statements(
        """\
        90000001,A1,,paid,PEN,50.00,,,2026-07-14T09:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        90000002,A1,,paid,PEN,50.00,,,2026-07-14T09:30:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,
        """
    )
    result = home.run("2026-07-14", "2026-07-14")  # conftest: every check of the run passed
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "counts_match_a_recount"]
    assert check.passed and check.metadata["scope"].value == "shop, shopi 2026-07-14..2026-07-14"

    with connect(home_lake(home.path)) as con:  # a hand edit the refresh cannot know of
        con.execute("DELETE FROM reference_cips WHERE cip = '90000002'")
        con.execute("UPDATE reference_counts SET cip_count = 3")
    expected = [("CIP missing", "shop", "A1", "90000002 paid"), ("recount only", "shop", "A1", "1 orders, 2 CIPs"),
                ("stored only", "shop", "A1", "1 orders, 3 CIPs")]
    settings = load_settings(home.path)
    with connect(settings.lake) as con:
        alone = counts_match_a_recount(con, settings)
    assert not alone.passed
    assert alone.metadata["differences"].value == [list(row) for row in expected]
    # the same drift, seen from the day's window (a partial recount), from another small day's
    # (which does not look at A1) and from a day holding most orders (checked whole)
    with connect(settings.lake) as con:
        for day, found in ((dt.date(2026, 7, 14), expected), (dt.date(2026, 7, 11), []), (dt.date(2026, 7, 10), expected)):
            set_variables(con, Window(("shop", "shopi"), day, day).variables(settings))
            assert reference_count_drift(con, "in_window(store_id, business_date)", "in_window(store_id, payment_date)") == found
        assert con.execute("SELECT count(*) FROM touched_references").fetchone()[0] == 0  # rolled back
    with connect(home_lake(home.path)) as con:
        con.execute("DELETE FROM current_state_marks WHERE model = 'reference_counts'")
    home.run("2026-07-14", "2026-07-14")
    with connect(settings.lake) as con:
        assert counts_match_a_recount(con, settings).passed
    assert home.query("SELECT cip_count FROM reference_counts") == [{"cip_count": 2}]
