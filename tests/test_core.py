"""Money, Lima time and masking: the small pieces everything else trusts."""

import datetime as dt

import pandas as pd
import pytest

from pagorecon_dagster.core.lima import lima_dates, nth_business_day_after, parse_timestamps
from pagorecon_dagster.core.masking import mask_digits, mask_email, mask_text
from pagorecon_dagster.core.money import MoneyError, cents_series, format_cents, parse_cents


def test_timestamps_naive_and_offset_values_mixed_in_one_column():
    values = pd.Series([
        "2026-08-02T23:51:54-05:00", "2026-08-02 23:51:54", "2026-01-05 10:23:45 -0500", "2026-07-15T00:30:00Z",
        "2026-07-14", "2026-07-14T19:30:00.123+00:00", "bad", "", None, "14/07/2026", "2026-02-30",
    ])
    utc = parse_timestamps(values)
    assert [None if pd.isna(t) else t.isoformat() for t in utc] == [
        "2026-08-03T04:51:54+00:00", "2026-08-03T04:51:54+00:00", "2026-01-05T15:23:45+00:00", "2026-07-15T00:30:00+00:00",
        "2026-07-14T05:00:00+00:00", "2026-07-14T19:30:00.123000+00:00", None, None, None, None, None,
    ]
    assert list(lima_dates(utc)[:4]) == [dt.date(2026, 8, 2), dt.date(2026, 8, 2), dt.date(2026, 1, 5), dt.date(2026, 7, 14)]


def test_timestamps_keep_the_rows_index_and_reject_impossible_instants():
    values = pd.Series(["2026-02-30T10:00:00-05:00", "2026-07-14T19:30:00+25:00", "2026-07-14T19:61:00", "2026-07-14 19:30:00.5 -0500"], index=[7, 3, 11, 5])
    utc = parse_timestamps(values)
    assert list(utc.index) == [7, 3, 11, 5]
    assert [None if pd.isna(t) else t.isoformat() for t in utc] == [None, None, None, "2026-07-15T00:30:00.500000+00:00"]
    assert lima_dates(utc).iloc[3] == dt.date(2026, 7, 14) and pd.isna(lima_dates(utc).iloc[0])


def test_naive_alone_is_lima_time():
    (t,) = parse_timestamps(pd.Series(["2026-08-02 19:30:00"]))
    assert t.isoformat() == "2026-08-03T00:30:00+00:00"


def test_money_is_exact_cents():
    assert list(cents_series(pd.Series(["0.05", "12", "12.5", "1234.50", "", "99999999999.99"]))) == [5, 1200, 1250, 123450, pd.NA, 9999999999999]
    assert parse_cents("10.1") == 1010
    with pytest.raises(MoneyError, match="thousands separator"):
        parse_cents("1,234.50")
    assert format_cents(-1005, "PEN") == "PEN -10.05"


def test_business_days_skip_weekends_peru_holidays_and_decreed_days():
    # Wed 2026-07-22; Thu 23 (Air Force day) and Tue 28 / Wed 29 (Independence) are holidays.
    assert nth_business_day_after(dt.date(2026, 7, 22), 1) == dt.date(2026, 7, 24)
    assert nth_business_day_after(dt.date(2026, 7, 24), 1) == dt.date(2026, 7, 27)
    assert nth_business_day_after(dt.date(2026, 7, 27), 1) == dt.date(2026, 7, 30)
    assert nth_business_day_after(dt.date(2026, 7, 27), 1, [dt.date(2026, 7, 30)]) == dt.date(2026, 7, 31)


def test_masking_keeps_dates_and_cips_readable():
    assert mask_email("josé.peña@example.pe") == "j********@example.pe"
    assert mask_digits("45871236") == "*****236"
    text = "paid 2026-07-14 19:30, CIP 90000001, CCI 002-193-00123456789012-34, phone 987654321, by ana@x.pe"
    assert mask_text(text) == "paid 2026-07-14 19:30, CIP 90000001, CCI *******************234, phone ******321, by a***@x.pe"


def test_evidence_money_matches_python_formatting_for_every_bigint(tmp_path):
    """The SQL `fmt_money` of evidence sentences prints what `format_cents` prints, signs,
    single céntimos and amounts too long for its fast DECIMAL path included."""
    from pagorecon_dagster.warehouse.duckdb import Lake, connect

    values = [0, 5, -5, 100, -123456, 99_999_999_999_999_99, 10**18, -(10**18), 2**63 - 1, -(2**63)]
    with connect(Lake.in_folder(tmp_path / "w")) as con:
        got = con.execute(
            "SELECT list(fmt_money(v, 'PEN') ORDER BY i) FROM unnest(?) WITH ORDINALITY AS t(v, i)", [values]
        ).fetchone()[0]
        assert con.execute("SELECT fmt_money(NULL, 'PEN'), fmt_money(5, NULL)").fetchone() == (None, "? 0.05")
    assert got == [f"PEN {format_cents(v)}" for v in values]


def test_the_usual_form_is_read_as_every_other_form_is():
    """Values in the usual form take a fast path (core/lima.py); it must agree with the general one."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.compute as pc

    from pagorecon_dagster.core import lima

    values = [
        "2026-07-14T19:30:00-05:00", "2026-07-14T19:30:00-0500", "2026-07-14T19:30:00+14:00", "2026-07-14T19:30:00+05:59",
        "2026-07-14T19:30:00-00:30", "2026-12-31T23:59:59-05:00", "2024-02-29T00:00:00-05:00", "2023-02-29T00:00:00-05:00",
        "2026-02-30T10:00:00-05:00", "2026-07-14T24:00:00-05:00", "2026-07-14T19:60:00-05:00", "2026-13-01T00:00:00-05:00",
        "1900-01-01T04:59:59-05:00", "2199-12-31T18:59:59-05:00",
    ]
    usual = lima.timestamps(pl.Series(values))
    assert pl.Series(values).str.contains(lima.USUAL_FORM).all()
    general = pl.Series(pc.cast(lima._parse_forms(pa.array(values)), pa.timestamp("us", tz="UTC")))
    assert usual.to_list() == general.to_list()
    assert usual.null_count() == 5 and usual[5].isoformat() == "2027-01-01T04:59:59+00:00"
    # 1900..2199 UTC, whichever path read the value
    edges = ["1899-12-31T18:59:59-05:00", "1899-12-31 18:59:59", "1899-12-31T19:00:00-05:00", "2199-12-31T19:00:00-05:00", "2199-12-31 19:00:00"]
    assert [t is not None for t in lima.timestamps(pl.Series(edges)).to_list()] == [False, False, True, False, False]
