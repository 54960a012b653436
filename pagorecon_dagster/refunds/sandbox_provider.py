"""A refund provider on loopback that plays the aggregator in tests and in the demo.

It speaks the API `provider_api.py` calls (docs/refunds.md, "The refund provider API"):
`POST /refunds` with an `Idempotency-Key`, `GET /refunds/<key>`. It keeps its own ledger of
payouts (one entry per refund it accepted: the proof of "exactly once"), and injects faults on
request: answer 500 before or after accepting, accept and then stall past the client's timeout,
stall past it and accept only then (meanwhile the key is "in progress": 409), answer "retry later"
(408, 425, 429 with `Retry-After`), or answer slowly. It can also already know a refund, as a
provider does when the warehouse was restored from a backup older than the payout."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from pagorecon_dagster.core.money import MoneyError, parse_cents
from pagorecon_dagster.sandbox.http import LoopbackServer

# Fault kinds for `inject`.
FAIL_500 = "500"                    # answer 500, accept nothing
FAIL_500_AFTER_ACCEPT = "500_after_accept"  # accept (ledger entry), then answer 500
TIMEOUT_AFTER_ACCEPT = "timeout"    # accept, then stall `stall_seconds` before answering
TIMEOUT_BEFORE_ACCEPT = "timeout_before_accept"  # stall `stall_seconds` (key in progress), then accept
# "Retry later": answered with `Retry-After: <provider.retry_after>`, nothing accepted.
RETRY_LATER_FAULTS = {"408": HTTPStatus.REQUEST_TIMEOUT, "425": HTTPStatus.TOO_EARLY, "429": HTTPStatus.TOO_MANY_REQUESTS}
FAULTS = (FAIL_500, FAIL_500_AFTER_ACCEPT, TIMEOUT_AFTER_ACCEPT, TIMEOUT_BEFORE_ACCEPT, *RETRY_LATER_FAULTS)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    idempotency_key: str | None
    status: int
    at: float = 0.0   # time.monotonic() when the answer was sent


class SandboxRefundProvider(LoopbackServer):
    """`with SandboxRefundProvider() as provider:` serves on 127.0.0.1 at `provider.url`."""

    name = "sandbox-refund-provider"
    wait_for_requests_on_stop = True   # a stalled payout is in the ledger once `stop()` returns

    def __init__(self, *, api_key: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 stall_seconds: float = 5.0, latency_seconds: float = 0.0):
        self.api_key = api_key or secrets.token_hex(16)
        self.stall_seconds = stall_seconds
        self.latency_seconds = latency_seconds
        self.default_status = "paid"             # what a new refund becomes: paid | processing | failed
        self.outcomes: dict[str, str] = {}        # per idempotency key, overrides default_status
        self.retry_after = "1"                    # Retry-After of "retry later" faults: seconds or an HTTP-date
        self._in_progress: set[str] = set()       # keys whose first POST is still being handled
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}
        self._ledger: list[dict[str, Any]] = []
        self._faults: dict[str, deque[str]] = {"POST": deque(), "GET": deque()}
        self._seen: list[Seen] = []
        self._released = threading.Event()
        super().__init__(_handler_for(self), host=host, port=port)

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        self._released.set()  # stalled requests return at once
        super().stop()

    # -- what tests arrange and inspect ------------------------------------------------------
    def inject(self, method: str, *faults: str) -> None:
        """The next requests with `method` fail in these ways, one fault per request, in order."""
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._faults[method.upper()].extend(faults)

    def ledger(self) -> list[dict[str, Any]]:
        """Every payout the provider made, in order: one entry per refund accepted."""
        with self._lock:
            return [dict(entry) for entry in self._ledger]

    def payouts(self, key: str) -> int:
        return sum(1 for entry in self.ledger() if entry["idempotency_key"] == key)

    def seen(self, method: str | None = None, key: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if (method is None or s.method == method) and (key is None or s.idempotency_key == key)]

    def know(self, key: str, body: dict[str, Any], status: str = "paid") -> dict[str, Any]:
        """Record a refund as already handled (`body` as the client sends it), as if it had been
        sent before the warehouse was restored from an older backup."""
        self.outcomes.setdefault(key, status)
        code, record = self._create(key, body)
        if code != HTTPStatus.CREATED:
            raise ValueError(f"the sandbox could not record {key}: {record}")
        return record

    def settle(self, key: str, status: str = "paid", failure_reason: str | None = None) -> None:
        """Finish a refund left `processing`, as the provider would later."""
        with self._lock:
            record = self._records[key]
            record.update(status=status, completed_at=_now(), failure_reason=failure_reason)

    # -- the API ------------------------------------------------------------------------------
    def _next_fault(self, method: str) -> str | None:
        with self._lock:
            return self._faults[method].popleft() if self._faults[method] else None

    def _authorized(self, headers) -> bool:
        return secrets.compare_digest(headers.get("Authorization", ""), f"Bearer {self.api_key}")

    def _create(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        problem = _invalid(body)
        if problem:
            return HTTPStatus.BAD_REQUEST, {"error": "invalid_request", "message": problem}
        fingerprint = {k: body.get(k) for k in ("amount", "currency", "cip", "store_id")}
        fingerprint["document"] = (body.get("beneficiary") or {}).get("document_number")
        with self._lock:
            known = self._records.get(key)
            if known is None and key in self._in_progress:
                return HTTPStatus.CONFLICT, {"error": "idempotency_in_progress",
                                             "message": f"a request with Idempotency-Key {key} is still being processed"}
            if known is not None:
                if known["_fingerprint"] != fingerprint:
                    return HTTPStatus.CONFLICT, {"error": "idempotency_conflict",
                                                 "message": f"Idempotency-Key {key} was used for a different refund"}
                return HTTPStatus.OK, _public(known)
            status = self.outcomes.get(key, self.default_status)
            record = {
                "id": f"SBX-{len(self._records) + 1:06d}",
                "idempotency_key": key,
                "status": status,
                "amount": body["amount"],
                "currency": body["currency"],
                "created_at": _now(),
                "completed_at": _now() if status != "processing" else None,
                "failure_reason": "beneficiary account closed" if status == "failed" else None,
                "_fingerprint": fingerprint,
            }
            self._records[key] = record
            if status != "failed":
                self._ledger.append({"reference": record["id"], "idempotency_key": key, "amount": body["amount"],
                                     "currency": body["currency"], "cip": body.get("cip")})
            return HTTPStatus.CREATED, _public(record)

    def _lookup(self, key: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            known = self._records.get(key)
        if known is None:
            return HTTPStatus.NOT_FOUND, {"error": "not_found", "message": f"no refund with Idempotency-Key {key}"}
        return HTTPStatus.OK, _public(known)

    def _stall(self) -> None:
        self._released.wait(self.stall_seconds)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    try:
        if parse_cents(str(body.get("amount", ""))) <= 0:
            return "amount must be above zero"
    except MoneyError as exc:
        return f"amount {exc}"
    if body.get("currency") not in ("PEN", "USD"):
        return "currency must be PEN or USD"
    if not (body.get("beneficiary") or {}).get("document_number"):
        return "beneficiary.document_number is required"
    return None


def _handler_for(provider: SandboxRefundProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - stdlib signature
            pass  # quiet: tests read `seen()` instead

        def _reply(self, status: int, payload: dict[str, Any], key: str | None) -> None:
            with provider._lock:
                provider._seen.append(Seen(self.command, self.path, key, int(status), time.monotonic()))
            body = json.dumps(payload).encode("utf-8")
            try:
                self.send_response(status)
                if status in RETRY_LATER_FAULTS.values():
                    self.send_header("Retry-After", provider.retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout we caused on purpose)

        def do_POST(self):  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            key = self.headers.get("Idempotency-Key")
            if provider.latency_seconds:
                provider._released.wait(provider.latency_seconds)
            if self.path.rstrip("/") != "/refunds":
                return self._reply(HTTPStatus.NOT_FOUND, {"error": "not_found"}, key)
            if not provider._authorized(self.headers):
                return self._reply(HTTPStatus.UNAUTHORIZED, {"error": "unauthorized"}, key)
            if not key:
                return self._reply(HTTPStatus.BAD_REQUEST, {"error": "invalid_request", "message": "Idempotency-Key header is required"}, key)
            fault = provider._next_fault("POST")
            if fault == FAIL_500:
                return self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal"}, key)
            if fault in RETRY_LATER_FAULTS:
                return self._reply(RETRY_LATER_FAULTS[fault], {"error": "retry_later"}, key)
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                return self._reply(HTTPStatus.BAD_REQUEST, {"error": "invalid_request", "message": "body is not JSON"}, key)
            if fault == TIMEOUT_BEFORE_ACCEPT:
                with provider._lock:
                    provider._in_progress.add(key)
                provider._stall()
                with provider._lock:
                    provider._in_progress.discard(key)
            status, payload = provider._create(key, body)
            if fault == FAIL_500_AFTER_ACCEPT:
                return self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal"}, key)
            if fault == TIMEOUT_AFTER_ACCEPT:
                provider._stall()
            return self._reply(status, payload, key)

        def do_GET(self):  # noqa: N802 - stdlib name
            prefix = "/refunds/"
            key = unquote(self.path[len(prefix):]) if self.path.startswith(prefix) else None
            if not key:
                return self._reply(HTTPStatus.NOT_FOUND, {"error": "not_found"}, None)
            if not provider._authorized(self.headers):
                return self._reply(HTTPStatus.UNAUTHORIZED, {"error": "unauthorized"}, key)
            fault = provider._next_fault("GET")
            if fault in (FAIL_500, FAIL_500_AFTER_ACCEPT):
                return self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal"}, key)
            if fault in RETRY_LATER_FAULTS:
                return self._reply(RETRY_LATER_FAULTS[fault], {"error": "retry_later"}, key)
            if fault == TIMEOUT_AFTER_ACCEPT:
                provider._stall()
            return self._reply(*provider._lookup(key), key)

    return Handler
