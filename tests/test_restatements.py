"""docs/landing-formats.md: latest file wins, last row within a file wins, same bytes are a no-op."""


def test_a_later_order_file_supersedes_and_the_last_row_of_a_file_wins(home):
    home.orders(
        """\
        A1,2026-07-14 10:00:00,pending,PEN,100.00,0.00,PagoEfectivo,,,
        A1,2026-07-14 10:00:00,pending,PEN,90.00,10.00,PagoEfectivo,,,
        """,
        name="a.csv",
    )
    home.statements("90000001,A1,,paid,PEN,90.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,\n")
    home.run("2026-07-14", "2026-07-14")
    (item,) = home.items()
    assert (item["status"], item["order_total_cents"]) == ("MATCHED", 9000)
    home.orders("A1,2026-07-14 10:00:00,cancelled,PEN,90.00,10.00,PagoEfectivo,,,\n", name="b.csv")
    result = home.run("2026-07-14", "2026-07-14")
    (item,) = home.items()
    assert item["status"] == "PAID_CANCELLED_ORDER"
    # the second run reads only b.csv: one order written, the CIPs untouched
    refreshed = {
        node: result.asset_materializations_for_node(node)[0].metadata for node in ("orders", "payments")
    }
    assert (refreshed["orders"]["refresh"].value, refreshed["orders"]["rows_written"].value) == ("incremental", 1)
    assert (refreshed["payments"]["refresh"].value, refreshed["payments"]["rows_written"].value) == ("unchanged", 0)
    (order,) = home.query("SELECT status, file, line FROM orders")
    assert (order["status"], order["file"], order["line"]) == ("cancelled", "orders/shop/b.csv", 2)


def test_files_new_in_one_run_apply_in_path_order_whatever_their_names_say(home):
    # the later path restates the earlier one, even though its content looks older
    home.statements("90000001,A1,,paid,PEN,90.00,,,2026-07-14T10:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,\n", name="2026-07-14_a.csv")
    home.statements("90000001,A1,,pending,PEN,90.00,,,2026-07-14T10:00:00-05:00,,,BCP,,,\n", name="2026-07-14_b.csv")
    home.run("2026-07-14", "2026-07-14")
    (cip,) = home.query("SELECT status, file FROM payments")
    assert (cip["status"], cip["file"]) == ("pending", "statements/shop/2026-07-14_b.csv")


def test_a_cip_restated_under_another_reference_moves_from_orphan_to_duplicate_in_the_next_run(home):
    """The second run reads one new CIP row: its old and new references are recounted, and
    reconciliation sees the orphan gone and the order paid twice."""
    home.orders("A1,2026-07-14 10:00:00,pending,PEN,50.00,0.00,PagoEfectivo,,,\n")
    home.statements(
        """\
        90000001,A1,,paid,PEN,50.00,,,2026-07-14T09:00:00-05:00,,2026-07-14T11:00:00-05:00,BCP,,,
        90000002,B7,,paid,PEN,50.00,,,2026-07-14T09:30:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,
        """,
        name="a.csv",
    )
    home.run("2026-07-14", "2026-07-14")
    assert [(i["status"], i["cip"]) for i in home.items()] == [("MATCHED", "90000001"), ("ORPHAN_PAYMENT", "90000002")]

    home.statements("90000002,a1,,paid,PEN,50.00,,,2026-07-14T09:30:00-05:00,,2026-07-14T12:00:00-05:00,BCP,,,\n", name="b.csv")
    result = home.run("2026-07-14", "2026-07-14")
    assert [(i["status"], i["order_id"], i["cip"]) for i in home.items()] == [
        ("MATCHED", "A1", "90000001"), ("DUPLICATE_PAYMENT", "A1", "90000002")]
    (counts,) = result.asset_materializations_for_node("reference_counts")
    assert (counts.metadata["refresh"].value, counts.metadata["rows"].value) == ("incremental", 1)
    assert home.query("SELECT reference, order_count, cip_count FROM reference_counts") == [
        {"reference": "A1", "order_count": 1, "cip_count": 2}]
