"""Money is integer céntimos from parsing onward; a decimal string is the only way in."""

from __future__ import annotations

import re

import pandas as pd

# docs/landing-formats.md, Every CSV: plain decimal with `.` and at most 2 places; no sign, no separators, no text.
# At most 15 digits before the point: céntimos stay far inside BIGINT, sums included.
MAX_WHOLE_DIGITS = 15
MONEY_PATTERN = rf"^\d{{1,{MAX_WHOLE_DIGITS}}}(\.\d{{1,2}})?$"
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


def parse_cents(value: str) -> int:
    """`'1234.5'` -> 123450. Raises MoneyError with the reason."""
    v = value.strip()
    if not _MONEY_RE.match(v):
        raise MoneyError(describe_money_problem(value))
    whole, _, frac = v.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def cents_series(values: pd.Series) -> pd.Series:
    """Vectorised parse_cents for strings already validated against MONEY_PATTERN; '' -> <NA>.
    Pads to two decimals and drops the point: `12` -> `1200`, `12.5` -> `1250`. No float."""
    v = values.astype("string[pyarrow]").str.strip().fillna("")
    empty = v == ""
    v = v.where(v.str.contains(".", regex=False), v + ".00")
    v = v.where(v.str.len() - v.str.find(".") == 3, v + "0")
    cents = v.where(~empty, "0").str.replace(".", "", regex=False).astype("int64")
    return cents.astype("Int64").mask(empty)


def format_cents(cents: int | None, currency: str | None = None) -> str:
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    text = f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"
    return f"{currency} {text}" if currency else text
