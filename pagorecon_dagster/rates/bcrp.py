"""The BCRP statistics API client: the SBS bank-system USD buy and sell rates, daily.

`GET {base}/{series}/json/{from}/{to}` with both series joined by `-` and daily dates written
`YYYY-MM-DD`. The reply lists business days only, `{"config": {...}, "periods": [{"name":
"28.Nov.26", "values": ["3.756", "3.762"]}]}`, one value per series in the order asked, and "n.d."
where a series has no value that day (such a day lands no rate: the last published one applies).
Period names abbreviate months in Spanish (`Ene`, `Ago`, `Set`, `Dic`).

Every call has a timeout; timeouts, connection errors and 5xx replies are retried with bounded
backoff; a 4xx, a reply that is not the shape above, or a rate that is not a plain positive
decimal is a `BcrpError` naming the URL and what was wrong. The API needs no key."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import requests

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.http import RetriesExhausted, send_with_retries
from pagorecon_dagster.pagoefectivo.landing import write_new

log = logging.getLogger("pagorecon.bcrp")

DEFAULT_BASE_URL = "https://estadisticas.bcrp.gob.pe/estadisticas/series/api"
# Tipo de cambio - TC Sistema bancario SBS (S/ por US$): compra, venta.
BUY_SERIES, SELL_SERIES = "PD04645PD", "PD04646PD"
CURRENCY = "USD"
NO_VALUE = "n.d."
MONTHS = {
    "ene": 1, "feb": 2, "mar": 3, "abr": 4, "may": 5, "jun": 6, "jul": 7, "ago": 8, "set": 9, "sep": 9,
    "oct": 10, "nov": 11, "dic": 12,
    # English abbreviations, should the API answer in English
    "jan": 1, "apr": 4, "aug": 8, "dec": 12,
}
PERIOD_RE = re.compile(r"^(\d{1,2})\.([A-Za-z]{3})\.(\d{2}|\d{4})$")
RATE_RE = re.compile(r"^\d{1,4}(\.\d{1,6})?$")
FX_HEADER = "date,currency,buy,sell\n"


class BcrpError(Exception):
    """A fetch that did not give rates; the message names the URL and what was wrong."""


@dataclass(frozen=True)
class Rate:
    date: dt.date
    buy: Decimal
    sell: Decimal


@dataclass(frozen=True)
class Fetched:
    start: dt.date
    end: dt.date
    rates: tuple[Rate, ...]
    no_value_days: tuple[dt.date, ...]   # business days the API lists with "n.d."


def series_url(base_url: str, start: dt.date, end: dt.date) -> str:
    return f"{base_url.rstrip('/')}/{BUY_SERIES}-{SELL_SERIES}/json/{start.isoformat()}/{end.isoformat()}"


def period_date(name: str) -> dt.date:
    """`28.Nov.26` -> 2026-11-28; `03.Ago.26` -> 2026-08-03."""
    match = PERIOD_RE.match(name.strip())
    month = MONTHS.get(match.group(2).lower()) if match else None
    if match is None or month is None:
        raise ValueError(f"period {name!r} is not a daily period like 28.Nov.26")
    year = int(match.group(3))
    return dt.date(year + 2000 if year < 100 else year, month, int(match.group(1)))


def _rate(text: Any) -> Decimal | None:
    value = str(text).strip()
    if value.lower() == NO_VALUE:
        return None
    if not RATE_RE.match(value) or Decimal(value) <= 0:
        raise ValueError(f"rate {text!r} is not a positive decimal")
    return Decimal(value)


def parse_reply(reply: Any, start: dt.date, end: dt.date) -> Fetched:
    """The reply's rates (both series present that day) and its "n.d." days; ValueError when the
    reply is not the API's shape."""
    if not isinstance(reply, dict) or not isinstance(reply.get("periods"), list):
        raise ValueError("the reply has no `periods` list")
    rates, missing = [], []
    for index, period in enumerate(reply["periods"]):
        values = period.get("values") if isinstance(period, dict) else None
        if not isinstance(values, list) or len(values) != 2:
            raise ValueError(f"periods[{index}] must have a name and two values (buy, sell), got {period!r}")
        day = period_date(str(period.get("name", "")))
        try:
            buy, sell = _rate(values[0]), _rate(values[1])
        except (ValueError, InvalidOperation) as exc:
            raise ValueError(f"periods[{index}] ({period.get('name')}): {exc}") from None
        if not start <= day <= end:
            continue
        if buy is None or sell is None:
            missing.append(day)
        else:
            rates.append(Rate(day, buy, sell))
    return Fetched(start, end, tuple(sorted(rates, key=lambda r: r.date)), tuple(sorted(missing)))


class BcrpClient:
    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, timeout: float = 20.0, attempts: int = 4,
                 backoff: float = 1.0, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.base_url = base_url
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.session = session or requests.Session()
        self.sleep = sleep

    def fetch(self, start: dt.date, end: dt.date) -> Fetched:
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        url = series_url(self.base_url, start, end)
        try:
            response = send_with_retries(
                lambda: self.session.get(url, timeout=self.timeout, headers={"Accept": "application/json"}),
                attempts=self.attempts, backoff_seconds=self.backoff, sleep=self.sleep, timeout_seconds=self.timeout,
                what=f"BCRP {url}", retry_on=(requests.RequestException,), logger=log)
        except RetriesExhausted as exc:
            raise BcrpError(f"BCRP {url}: no answer after {exc.attempts} attempts ({exc.problem})") from None
        if response.status_code != 200:
            raise BcrpError(f"BCRP {url}: HTTP {response.status_code} {response.text[:200]!r}")
        try:
            return parse_reply(response.json(), start, end)
        except ValueError as exc:
            raise BcrpError(f"BCRP {url}: not a series reply: {exc}") from None


def fx_csv(fetched: Fetched) -> bytes:
    """The rates in the landing format `date, currency, buy, sell` (docs/landing-formats.md)."""
    lines = [f"{r.date.isoformat()},{CURRENCY},{r.buy},{r.sell}\n" for r in fetched.rates]
    return (FX_HEADER + "".join(lines)).encode("utf-8")


def land_rates(settings: Settings, fetched: Fetched) -> tuple[Path | None, bool]:
    """`landing/fx/bcrp_<from>_<to>_<sha8>.csv` (None when no day had a rate); the same rates give
    the same name, so a fetch that found nothing new lands nothing. Returns (path, written)."""
    if not fetched.rates:
        return None, False
    content = fx_csv(fetched)
    sha8 = hashlib.sha256(content).hexdigest()[:8]
    path = settings.landing / "fx" / f"bcrp_{fetched.start.isoformat()}_{fetched.end.isoformat()}_{sha8}.csv"
    return path, write_new(path, content)
