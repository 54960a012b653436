"""A PagoEfectivo that runs on loopback, for tests and the demo.

It checks `hashString` the way PagoEfectivo does (recomputed from the service's secret key and
the exact strings received), issues tokens that expire (`token_seconds`, short in tests), answers
`/v1/cips/search` from seeded CIPs, injects faults (the next N calls fail with 5xx or answer
slowly), and records every request it got. `send_notification` POSTs a signed notification to a
webhook, as PagoEfectivo would.

Reply codes other than 100 are the sandbox's own (PagoEfectivo's error codes are not public):
110 malformed request, 111 credentials refused, 112 token missing, unknown or expired."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import requests

from pagorecon_dagster.pagoefectivo.client import (
    AUTHORIZATIONS_PATH,
    CIPS_SEARCH_PATH,
    hash_string,
    loads_exact,
    parse_instant,
)
from pagorecon_dagster.pagoefectivo.webhook import SIGNATURE_HEADER, sign
from pagorecon_dagster.sandbox.http import Fault, RecordedRequest, Reply, SandboxApi, json_reply

OK_CODE, MALFORMED_CODE, CREDENTIALS_CODE, TOKEN_CODE = 100, 110, 111, 112


@dataclass
class SandboxService:
    """One merchant service as PagoEfectivo knows it, with the CIPs it has issued."""

    service_id: str
    access_key: str
    secret_key: str = field(repr=False)
    cips: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Token:
    service_id: str
    expires: dt.datetime


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class PagoEfectivoSandbox(SandboxApi):
    name = server_version = "pagoefectivo-sandbox"

    def __init__(
        self,
        services: Iterable[SandboxService],
        *,
        token_seconds: float = 3600,
        page_size: int | None = None,
        max_clock_skew: dt.timedelta = dt.timedelta(minutes=10),
        clock: Callable[[], dt.datetime] = _utc_now,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(host=host, port=port)
        self.services = {str(s.service_id): s for s in services}
        self.token_seconds = token_seconds
        self.page_size = page_size
        self.max_clock_skew = max_clock_skew
        self.clock = clock
        self._tokens: dict[str, _Token] = {}

    # --- steering it from a test (and `fail_next`, `slow_next`) -----------------------------------

    def revoke_tokens(self) -> None:
        """Forget every token issued, as if they had expired early on PagoEfectivo's side."""
        with self._lock:
            self._tokens.clear()

    def calls(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # --- what PagoEfectivo answers --------------------------------------------------------------

    def fault_reply(self, fault: Fault) -> Reply:
        return json_reply(fault.status or self.fail_status, {"code": fault.status, "message": "sandbox: injected failure"})

    def answer(self, request: RecordedRequest) -> Reply:
        return json_reply(*self._answer(request))

    def _answer(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        if request.method != "POST":
            return 405, {"code": MALFORMED_CODE, "message": "only POST"}
        if request.path == AUTHORIZATIONS_PATH:
            return self._authorize(request.body)
        if request.path == CIPS_SEARCH_PATH:
            return self._search(request.headers.get("authorization", ""), request.body)
        return 404, {"code": MALFORMED_CODE, "message": f"no such resource {request.path}"}

    def _authorize(self, body: bytes) -> tuple[int, dict[str, Any]]:
        request = _json_object(body)
        fields = ("accessKey", "idService", "dateRequest", "hashString")
        if request is None or any(request.get(f) in (None, "") for f in fields):
            return 400, {"code": MALFORMED_CODE, "message": f"body must be a JSON object with {', '.join(fields)}"}
        service = self.services.get(str(request["idService"]))
        if service is None or not _same(request["accessKey"], service.access_key):
            return 401, {"code": CREDENTIALS_CODE, "message": "idService or accessKey not recognised"}
        sent = parse_instant(request["dateRequest"])
        if sent is None or sent.utcoffset() != dt.timedelta(hours=-5):
            return 400, {"code": MALFORMED_CODE, "message": "dateRequest must be ISO-8601 with offset -05:00"}
        now = self.clock()
        if abs(now - sent) > self.max_clock_skew:
            return 401, {"code": CREDENTIALS_CODE, "message": "dateRequest too far from the server's time"}
        expected = hash_string(service.service_id, service.access_key, service.secret_key, str(request["dateRequest"]))
        if not _same(request["hashString"], expected):
            return 401, {"code": CREDENTIALS_CODE, "message": "hashString does not match"}
        token = secrets.token_urlsafe(24)
        expires = now + dt.timedelta(seconds=self.token_seconds)
        with self._lock:
            self._tokens[token] = _Token(service.service_id, expires)
        lima = dt.timezone(dt.timedelta(hours=-5))
        return 200, {
            "code": OK_CODE,
            "message": "Solicitud exitosa",
            "data": {
                "token": token,
                "codeService": service.service_id,
                "tokenStart": now.astimezone(lima).isoformat(timespec="seconds"),
                "tokenExpires": expires.astimezone(lima).isoformat(timespec="seconds"),
            },
        }

    def _search(self, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        scheme, _, value = authorization.partition(" ")
        with self._lock:
            token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or self.clock() >= token.expires:
            return 401, {"code": TOKEN_CODE, "message": "token missing, unknown or expired"}
        request = _json_object(body)
        start = parse_instant(request.get("startDate")) if request else None
        end = parse_instant(request.get("endDate")) if request else None
        if start is None or end is None:
            return 400, {"code": MALFORMED_CODE, "message": "body must carry startDate and endDate (ISO-8601)"}
        found = [c for c in self.services[token.service_id].cips if _touches(c, start, end)]
        reply: dict[str, Any] = {"code": OK_CODE, "message": "Solicitud exitosa"}
        if self.page_size:
            page = int(request.get("page") or 1)
            reply["totalPages"] = max(1, -(-len(found) // self.page_size))
            found = found[(page - 1) * self.page_size: page * self.page_size]
        reply["data"] = found
        return 200, reply


def _same(received: Any, expected: str) -> bool:
    """Constant-time comparison that also takes non-ASCII input."""
    return hmac.compare_digest(str(received).encode("utf-8"), expected.encode("utf-8"))


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        doc = loads_exact(body)
    except (UnicodeDecodeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _touches(cip: dict[str, Any], start: dt.datetime, end: dt.datetime) -> bool:
    """A CIP belongs to a search window when it was created or paid inside it."""
    for key in ("dateCreation", "datePayment"):
        when = parse_instant(cip.get(key)) if cip.get(key) else None
        if when is not None and start <= when <= end:
            return True
    return False


# --- notifications, as PagoEfectivo sends them ---------------------------------------------------


def notification_body(
    operation_number: str,
    cip: str,
    transaction_code: str,
    amount: str,
    *,
    currency: str = "PEN",
    payment_date: str = "2026-07-14T19:45:00-05:00",
    event_type: str = "cip.paid",
) -> bytes:
    """A notification body like PagoEfectivo's (DOMAIN.md), as the exact bytes to sign and send."""
    doc = {
        "eventType": event_type,
        "operationNumber": operation_number,
        "data": {"cip": cip, "currency": currency, "amount": amount, "paymentDate": payment_date,
                 "transactionCode": transaction_code},
    }
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def send_notification(
    url: str, body: bytes, secret_key: str | None, *, signature: str | None = None, timeout: float = 10.0
) -> requests.Response:
    """POST `body` to a webhook with `PE-Signature` computed from `secret_key` (or the given
    `signature`, to test a forged one; both None sends no signature)."""
    headers = {"Content-Type": "application/json"}
    value = signature if signature is not None else (sign(body, secret_key) if secret_key is not None else None)
    if value is not None:
        headers[SIGNATURE_HEADER] = value
    return requests.post(url, data=body, headers=headers, timeout=timeout)
