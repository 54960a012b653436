"""Money is integer céntimos from parsing onward; a decimal string is the only way in."""

from __future__ import annotations

import re

import pandas as pd
import polars as pl

# docs/landing-formats.md, Every CSV: plain decimal with `.` and at most 2 places; no sign, no separators, no text.
# At most 15 digits before the point: céntimos stay far inside BIGINT, sums included.
MAX_WHOLE_DIGITS = 15
MONEY_PATTERN = rf"^[0-9]{{1,{MAX_WHOLE_DIGITS}}}(\.[0-9]{{1,2}})?$"
_MONEY_RE = re.compile(MONEY_PATTERN)


class MoneyError(ValueError):
    pass


def describe_money_problem(value: str) -> str:
    """Why `value` is not a plain money amount, in words a finance user can act on."""
    v = value.strip()
    if v == "":
        return "is empty (an amount is required)"
    if v.startswith("-") or (v.startswith("(") and v.endswith(")")):
        return f"{value!r} is negative; amounts must be >= 0"
    if "," in v and "." in v or re.fullmatch(r"\d{1,3}(,\d{3})+", v):
        return f"{value!r} has a thousands separator; write 1234.50"
    if re.fullmatch(r"\d+,\d{1,2}", v):
        return f"{value!r} uses a decimal comma; write 1234.50"
    if re.fullmatch(r"\d+\.\d{3,}", v):
        return f"{value!r} has more than 2 decimal places"
    if re.fullmatch(r"\d+(\.\d{1,2})?", v):
        return f"{value!r} has more than {MAX_WHOLE_DIGITS} digits before the point; no amount is that large"
    if re.search(r"[eE][+-]?\d+$", v):
        return f"{value!r} is in scientific notation (Excel); export the column as text or number with 2 decimals"
    return f"{value!r} is not a plain decimal amount like 1234.50"


def plain_amounts(values: pd.Series, decimal_separator: str = ".", symbols=()) -> pd.Series:
    """An export's amounts in the plain form MONEY_PATTERN judges: a currency symbol of `symbols`
    dropped from either end, a decimal comma made a point. Anything else is left as written, to
    be judged (and refused) as it is."""
    v = values.astype("string[pyarrow]").str.strip()
    for symbol in sorted(symbols, key=len, reverse=True):
        escaped = re.escape(symbol)
        v = v.str.replace(rf"^{escaped}\s*(\d.*)$", r"\1", regex=True).str.replace(rf"^(.*\d)\s*{escaped}$", r"\1", regex=True)
    if decimal_separator == ",":
        # `12,50` -> `12.50`; `1.234,50` keeps its point and is refused as a thousands separator.
        v = v.str.replace(r"^(\d+),(\d{1,2})$", r"\1.\2", regex=True)
    return v


def amount_symbol(values: pd.Series, symbols: dict[str, str]) -> pd.Series:
    """The currency `symbols` maps the symbol an amount is written with to, or <NA>."""
    v = values.astype("string[pyarrow]").str.strip()
    found = pd.Series(pd.NA, index=values.index, dtype="string[pyarrow]")
    for symbol in sorted(symbols, key=len, reverse=True):
        has = (v.str.startswith(symbol) | v.str.endswith(symbol)).fillna(False).astype(bool) & found.isna()
        found = found.mask(has, symbols[symbol])
    return found


def parse_cents(value: str) -> int:
    """`'1234.5'` -> 123450. Raises MoneyError with the reason."""
    v = value.strip()
    if not _MONEY_RE.match(v):
        raise MoneyError(describe_money_problem(value))
    whole, _, frac = v.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def cents(values: pl.Expr) -> pl.Expr:
    """Vectorised parse_cents for strings already validated against MONEY_PATTERN; '' -> null.
    Pads to two decimals and drops the point: `12` -> `1200`, `12.5` -> `1250`. No float."""
    v = values.fill_null("").str.strip_chars()
    parts = v.str.split_exact(".", 1)
    whole = parts.struct.field("field_0").cast(pl.Int64, strict=False)
    frac = parts.struct.field("field_1").fill_null("").str.pad_end(2, "0").cast(pl.Int64, strict=False)
    return pl.when(v != "").then(whole * 100 + frac)


def cents_series(values: pd.Series) -> pd.Series:
    """`cents` for a pandas column (nullable Int64)."""
    text = pl.Series("v", values.astype("string[pyarrow]").to_numpy(na_value=None), dtype=pl.String)
    out = pl.DataFrame([text]).select(cents(pl.col("v")).alias("v"))["v"]
    return pd.Series(out.to_list(), index=values.index, dtype="Int64")


def format_cents(cents: int | None, currency: str | None = None) -> str:
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    text = f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"
    return f"{currency} {text}" if currency else text
