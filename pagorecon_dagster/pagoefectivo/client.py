"""PagoEfectivo REST API v1 client: the token call, token reuse, and `/v1/cips/search`.

Every call has a timeout. Timeouts, connection errors and 5xx replies are retried with
exponential backoff (bounded); a 4xx reply is never retried; a 401 on a data call refreshes the
token once. The secret key is used only to compute `hashString` locally: it is never sent, logged
or put into an exception."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests

from pagorecon_dagster.core.http import RetriesExhausted, send_with_retries
from pagorecon_dagster.core.masking import mask_text
from pagorecon_dagster.pagoefectivo.credentials import Credentials

log = logging.getLogger("pagorecon.pagoefectivo")

LIMA = dt.timezone(dt.timedelta(hours=-5), "Lima")  # UTC-5 all year, no daylight saving
SUCCESS_CODE = "100"
AUTHORIZATIONS_PATH = "/v1/authorizations"
CIPS_SEARCH_PATH = "/v1/cips/search"
# Unconfirmed: the search body and its paging are our assumption (docs/pagoefectivo.md).
SEARCH_PAGE_SIZE = 500
MAX_SEARCH_PAGES = 10_000


class PagoEfectivoError(Exception):
    """An API call that did not succeed; the message names the store, the call and the reply."""


def hash_string(service_id: str, access_key: str, secret_key: str, date_request: str) -> str:
    """DOMAIN.md: lowercase hex SHA-256 of `idService.accessKey.secretKey.dateRequest`."""
    joined = ".".join((str(service_id), access_key, secret_key, date_request))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def date_request(now: dt.datetime) -> str:
    """`2026-07-14T10:05:00-05:00`: seconds precision, Lima offset."""
    return now.astimezone(LIMA).replace(microsecond=0).isoformat()


def parse_instant(text: Any) -> dt.datetime | None:
    """An ISO-8601 instant from a reply; naive means Lima. None when absent or unreadable."""
    try:
        value = dt.datetime.fromisoformat(str(text).strip())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=LIMA)


def search_body(start: dt.date, end: dt.date, page: int, page_size: int) -> dict[str, Any]:
    """Unconfirmed request shape: the whole Lima days start..end, one page of results."""
    return {
        "startDate": f"{start.isoformat()}T00:00:00-05:00",
        "endDate": f"{end.isoformat()}T23:59:59-05:00",
        "page": page,
        "pageSize": page_size,
    }


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def loads_exact(text: str | bytes) -> Any:
    """JSON with its numbers kept exact (Decimal), never through a float; NaN/Infinity refused."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


def dumps_exact(value: Any) -> str:
    """JSON text with numbers written exactly as they were read (Decimal, never float)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {dumps_exact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps_exact(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _describe(reply: Any) -> str:
    if not isinstance(reply, dict):
        return "no JSON object in the reply"
    return mask_text(f"code {reply.get('code')!r}: {reply.get('message')!r}")


@dataclass
class Token:
    value: str = field(repr=False)  # a bearer credential: kept out of reprs and logs
    expires: dt.datetime


class PagoEfectivoClient:
    """One store's connection. Reuse one instance: it keeps the token until shortly before expiry."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 4,
        backoff_seconds: float = 0.5,
        token_margin: dt.timedelta = dt.timedelta(seconds=60),
        page_size: int = SEARCH_PAGE_SIZE,
        clock: Callable[[], dt.datetime] = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.credentials = credentials
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.token_margin = token_margin
        self.page_size = page_size
        self.clock = clock
        self.sleep = sleep
        self.session = session or requests.Session()
        self._token: Token | None = None

    def __repr__(self) -> str:
        return f"PagoEfectivoClient(store={self.credentials.store_id!r}, url={self.credentials.api_url!r})"

    # --- token ----------------------------------------------------------------------------------

    def token(self) -> str:
        """The current token, asking for a new one when there is none or it is about to expire."""
        if self._token is None or self.clock() >= self._token.expires - self.token_margin:
            self._token = self._authorize()
        return self._token.value

    def _authorize(self) -> Token:
        c = self.credentials
        when = date_request(self.clock())
        body = {
            "accessKey": c.access_key,
            "idService": int(c.service_id) if c.service_id.isdigit() else c.service_id,
            "dateRequest": when,
            "hashString": hash_string(c.service_id, c.access_key, c.secret_key, when),
        }
        response = self._post(AUTHORIZATIONS_PATH, body, bearer=None)
        reply = self._json_or_error(AUTHORIZATIONS_PATH, response)
        data = reply.get("data") if isinstance(reply, dict) else None
        if response.status_code >= 400 or str(reply.get("code")) != SUCCESS_CODE or not isinstance(data, dict) or not data.get("token"):
            raise PagoEfectivoError(
                f"store {c.store_id!r}: PagoEfectivo refused the authorization (HTTP {response.status_code}, "
                f"{_describe(reply)}). Check the store's ACCESS_KEY, SECRET_KEY and SERVICE_ID variables "
                f"and that this machine's clock is right."
            )
        expires = parse_instant(data.get("tokenExpires"))
        if expires is None:
            log.warning("store %s: the token reply has no readable tokenExpires; the token is used for one call", c.store_id)
            expires = self.clock()
        log.info("store %s: new PagoEfectivo token, expires %s", c.store_id, expires.isoformat())
        return Token(str(data["token"]), expires)

    # --- data calls -----------------------------------------------------------------------------

    def search_cips(self, start: dt.date, end: dt.date) -> dict[str, Any]:
        """Every CIP of the Lima days start..end as one reply `{code, message, data: [...]}`.
        Pages 2..N are fetched when the reply says `totalPages` > 1 (unconfirmed paging)."""
        if start > end:
            raise ValueError(f"start {start} is after end {end}")
        first = self.call(CIPS_SEARCH_PATH, search_body(start, end, 1, self.page_size))
        cips = self._cips_of(first, 1)
        pages = first.get("totalPages")
        total = int(pages) if isinstance(pages, (int, Decimal, str)) and str(pages).isdigit() else 1
        if total > MAX_SEARCH_PAGES:
            raise PagoEfectivoError(f"store {self.credentials.store_id!r}: {CIPS_SEARCH_PATH} says {total} pages; narrow the date range")
        for page in range(2, total + 1):
            cips.extend(self._cips_of(self.call(CIPS_SEARCH_PATH, search_body(start, end, page, self.page_size)), page))
        return {"code": first.get("code"), "message": first.get("message"), "data": cips}

    def _cips_of(self, reply: dict[str, Any], page: int) -> list[Any]:
        data = reply.get("data")
        if data is None:
            return []
        if not isinstance(data, list):
            raise PagoEfectivoError(
                f"store {self.credentials.store_id!r}: {CIPS_SEARCH_PATH} page {page}: `data` is a {type(data).__name__}, expected a list of CIPs"
            )
        return list(data)

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST with the Bearer token; a 401 gets one new token and one more try."""
        response = self._post(path, body, bearer=self.token())
        if response.status_code == 401:
            log.info("store %s: %s answered 401; asking for a new token", self.credentials.store_id, path)
            self._token = None
            response = self._post(path, body, bearer=self.token())
        reply = self._json_or_error(path, response)
        if response.status_code >= 400 or str(reply.get("code")) != SUCCESS_CODE:
            raise PagoEfectivoError(
                f"store {self.credentials.store_id!r}: POST {path} failed: HTTP {response.status_code}, {_describe(reply)}"
            )
        return reply

    # --- transport ------------------------------------------------------------------------------

    def _json_or_error(self, path: str, response: requests.Response) -> dict[str, Any]:
        try:
            reply = loads_exact(response.content)
        except (UnicodeDecodeError, ValueError):
            raise PagoEfectivoError(
                f"store {self.credentials.store_id!r}: POST {path} answered HTTP {response.status_code} with a body that is not JSON"
            ) from None
        if not isinstance(reply, dict):
            raise PagoEfectivoError(
                f"store {self.credentials.store_id!r}: POST {path} answered HTTP {response.status_code} with JSON that is not an object"
            )
        return reply

    def _post(self, path: str, body: dict[str, Any], *, bearer: str | None) -> requests.Response:
        """One call, retried on timeouts, connection errors and 5xx; any other reply is returned."""
        url = self.credentials.api_url + path
        headers = {"Accept": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            return send_with_retries(
                lambda: self.session.post(url, json=body, headers=headers, timeout=self.timeout),
                attempts=self.max_attempts, backoff_seconds=self.backoff_seconds, sleep=self.sleep,
                timeout_seconds=self.timeout[1], what=f"store {self.credentials.store_id}: POST {path}", logger=log)
        except RetriesExhausted as exc:
            raise PagoEfectivoError(f"store {self.credentials.store_id!r}: POST {url} {exc}") from None
