"""A BCRP statistics API on loopback, with the real reply shape, for tests and the demo.

`GET /estadisticas/series/api/{codes}/json/{from}/{to}`: the SBS bank-system USD buy and sell
series (rates/bcrp.py), business days only (weekends and the given holidays are not listed),
`"n.d."` on a listed day with no value, months in Spanish (`28.Nov.26`, `03.Ago.26`). An unknown
series or a date that is not `YYYY-MM-DD` is answered 400 with a text body; `fail_next` makes the
next calls answer a 5xx."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterable, Mapping
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pagorecon_dagster.rates.bcrp import BUY_SERIES, NO_VALUE, SELL_SERIES

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


class BcrpSandbox:
    def __init__(self, rates: Mapping[dt.date, tuple[str, str]] = {}, *, holidays: Iterable[dt.date] = (),
                 host: str = "127.0.0.1", port: int = 0):
        """`rates`: day -> (buy, sell) as the API writes them; a listed business day absent here is "n.d."."""
        self.rates = dict(rates)
        self.holidays = set(holidays)
        self.requests: list[str] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._server.sandbox = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PATH_PREFIX}"

    def start(self) -> BcrpSandbox:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="bcrp-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> BcrpSandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend([status] * count)

    def handle(self, path: str) -> tuple[int, str, bytes]:
        with self._lock:
            self.requests.append(path)
            if self._failures:
                return self._failures.pop(0), "text/html", b"<html><body>Servicio no disponible</body></html>"
        match = PATH_RE.match(path)
        if not match:
            return 404, "text/plain", b"Not found"
        codes, start, end = match.group(1).split("-"), match.group(2), match.group(3)
        if any(code not in SERIES_NAMES for code in codes) or not (DAY_RE.match(start) and DAY_RE.match(end)):
            return 400, "text/plain", "Código de serie o periodo no válido".encode("utf-8")
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
        return 200, "application/json; charset=utf-8", json.dumps(reply, ensure_ascii=False).encode("utf-8")


def rates_for(days: Iterable[dt.date], buy: str = "3.745", sell: str = "3.752") -> dict[dt.date, tuple[str, str]]:
    """The same buy and sell on every day, e.g. for the demo."""
    return {day: (str(Decimal(buy)), str(Decimal(sell))) for day in days}


class _Handler(BaseHTTPRequestHandler):
    server_version = "bcrp-sandbox"

    def do_GET(self) -> None:
        status, content_type, body = self.server.sandbox.handle(self.path)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass  # every request is in `sandbox.requests`
