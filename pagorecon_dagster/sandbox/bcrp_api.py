"""A BCRP statistics API on loopback, with the real reply shape, for tests and the demo.

`GET /estadisticas/series/api/{codes}/json/{from}/{to}`: the SBS bank-system USD buy and sell
series (rates/bcrp.py), business days only (weekends and the given holidays are not listed),
`"n.d."` on a listed day with no value, months in Spanish (`28.Nov.26`, `03.Ago.26`). An unknown
series or a date that is not `YYYY-MM-DD` is answered 400 with a text body; `fail_next` makes the
next calls answer a 5xx."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

from pagorecon_dagster.rates.bcrp import BUY_SERIES, NO_VALUE, SELL_SERIES
from pagorecon_dagster.sandbox.http import Fault, RecordedRequest, Reply, SandboxApi, json_reply

PATH_PREFIX = "/estadisticas/series/api"
SERIES_NAMES = {
    BUY_SERIES: "Tipo de cambio - TC Sistema bancario SBS (S/ por US$) - Compra",
    SELL_SERIES: "Tipo de cambio - TC Sistema bancario SBS (S/ por US$) - Venta",
}
MONTHS_ES = ("Ene", "Feb", "Mar", "Abr", "May", "Jun", "Jul", "Ago", "Set", "Oct", "Nov", "Dic")
PATH_RE = re.compile(rf"^{PATH_PREFIX}/([A-Z0-9-]+)/json/([^/]+)/([^/?]+)/?$")
DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def period_name(day: dt.date) -> str:
    return f"{day.day:02d}.{MONTHS_ES[day.month - 1]}.{day.year % 100:02d}"


class BcrpSandbox(SandboxApi):
    name = server_version = "bcrp-sandbox"
    fail_status = 503

    def __init__(self, rates: Mapping[dt.date, tuple[str, str]] = {}, *, holidays: Iterable[dt.date] = (),
                 host: str = "127.0.0.1", port: int = 0):
        """`rates`: day -> (buy, sell) as the API writes them; a listed business day absent here is "n.d."."""
        super().__init__(host=host, port=port)
        self.rates = dict(rates)
        self.holidays = set(holidays)
        self.requests: list[str] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}{PATH_PREFIX}"

    def record(self, request: RecordedRequest) -> str:
        return request.path

    def fault_reply(self, fault: Fault) -> Reply:
        return Reply(fault.status or self.fail_status, b"<html><body>Servicio no disponible</body></html>", "text/html")

    def answer(self, request: RecordedRequest) -> Reply:
        match = PATH_RE.match(request.path)
        if not match:
            return Reply(404, b"Not found", "text/plain")
        codes, start, end = match.group(1).split("-"), match.group(2), match.group(3)
        if any(code not in SERIES_NAMES for code in codes) or not (DAY_RE.match(start) and DAY_RE.match(end)):
            return Reply(400, "Código de serie o periodo no válido".encode("utf-8"), "text/plain")
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
        periods = []
        day = first
        while day <= last:
            if day.weekday() < 5 and day not in self.holidays:
                values = self.rates.get(day)
                periods.append({"name": period_name(day), "values": [
                    (values[0] if code == BUY_SERIES else values[1]) if values else NO_VALUE for code in codes]})
            day += dt.timedelta(days=1)
        reply = {"config": {"title": "Tipo de cambio",
                            "series": [{"name": SERIES_NAMES[code], "dec": "3"} for code in codes]},
                 "periods": periods}
        return json_reply(200, reply)


def rates_for(days: Iterable[dt.date], buy: str = "3.745", sell: str = "3.752") -> dict[dt.date, tuple[str, str]]:
    """The same buy and sell on every day, e.g. for the demo."""
    return {day: (str(Decimal(buy)), str(Decimal(sell))) for day in days}
