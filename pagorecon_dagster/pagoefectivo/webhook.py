"""`pagorecon webhook serve`: the endpoint PagoEfectivo POSTs payment notifications to.

`POST /notifications/<store_id>` with header `PE-Signature` = lowercase hex HMAC-SHA256 of the
raw body keyed with the store's secret key. An accepted notification is written, byte for byte,
to `landing/statements/<store_id>/notifications/<operationNumber>.json` and made durable before
the 200 goes out, so a 200 is never a lost payment. A repeated `operationNumber` is the same
notification: 200 again, nothing written (the first body is kept).

Answers: 200 accepted or duplicate, 400 malformed body, 401 missing or bad signature, 404 unknown
path or store, 405 other methods, 411 no Content-Length, 413 body over 1 MiB, 500 the file could
not be written (PagoEfectivo will retry), 503 the store has no secret key configured."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.masking import mask_text
from pagorecon_dagster.pagoefectivo import credentials
from pagorecon_dagster.pagoefectivo.landing import write_new

log = logging.getLogger("pagorecon.webhook")

SIGNATURE_HEADER = "PE-Signature"
MAX_BODY_BYTES = 1 << 20
# An oversized upload is drained (and dropped) up to this much, for this long per read.
DISCARD_LIMIT_BYTES, DISCARD_SECONDS = 64 << 20, 2.0
NOTIFICATIONS_FOLDER = "notifications"
ROUTE = re.compile(r"^/notifications/(?P<store>[^/]+)/?$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def sign(body: bytes, secret_key: str) -> str:
    """The `PE-Signature` PagoEfectivo sends for `body`."""
    return hmac.new(secret_key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def file_stem(operation_number: str) -> str:
    """A file name for an operationNumber. Anything but letters, digits, `_` and `-` becomes `_`,
    and then a hash of the original is appended so two different numbers never share a file."""
    safe = _UNSAFE.sub("_", operation_number)[:100]
    if safe == operation_number:
        return safe
    return f"{safe}_{hashlib.sha256(operation_number.encode('utf-8')).hexdigest()[:8]}"


class Malformed(ValueError):
    """The body is not a notification; the message says why (it goes back in the 400)."""


def parse_notification(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body.decode("utf-8-sig"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        raise Malformed("the body is not UTF-8 JSON") from None
    if not isinstance(doc, dict):
        raise Malformed("the body must be a JSON object {eventType, operationNumber, data}")
    event = doc.get("eventType")
    if not isinstance(event, str) or not event.strip():
        raise Malformed("`eventType` must be a non-empty string")
    number = doc.get("operationNumber")
    if isinstance(number, bool) or not isinstance(number, (str, int)) or not str(number).strip():
        raise Malformed("`operationNumber` must be a non-empty string or number")
    if not isinstance(doc.get("data"), dict):
        raise Malformed("`data` must be an object {cip, currency, amount, paymentDate, transactionCode}")
    return doc


@dataclass(frozen=True)
class Outcome:
    status: HTTPStatus
    message: str


class NotificationReceiver:
    """What the endpoint does with one request, apart from HTTP: verify, parse, land."""

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None):
        self.landing = settings.landing
        self.secrets = {store_id: credentials.secret_key(store_id, environ) for store_id in settings.store_ids}
        unconfigured = [store_id for store_id, secret in self.secrets.items() if secret is None]
        if unconfigured:
            log.warning(
                "no secret key for store(s) %s: their notifications get 503 until %s is set",
                ", ".join(unconfigured), " or ".join(credentials.env_names(unconfigured[0], credentials.SECRET_KEY)),
            )

    def knows(self, store_id: str) -> bool:
        return store_id in self.secrets

    def receive(self, store_id: str, body: bytes, signature: str | None) -> Outcome:
        if store_id not in self.secrets:
            return Outcome(HTTPStatus.NOT_FOUND, f"unknown store {store_id!r}")
        secret = self.secrets[store_id]
        if secret is None:
            return Outcome(HTTPStatus.SERVICE_UNAVAILABLE, f"store {store_id!r} has no secret key configured")
        if not signature:
            log.warning("store %s: notification without %s rejected", store_id, SIGNATURE_HEADER)
            return Outcome(HTTPStatus.UNAUTHORIZED, f"missing {SIGNATURE_HEADER} header")
        if not hmac.compare_digest(sign(body, secret).encode("ascii"), signature.strip().lower().encode("utf-8", "replace")):
            log.warning("store %s: notification with a wrong %s rejected (%d bytes)", store_id, SIGNATURE_HEADER, len(body))
            return Outcome(HTTPStatus.UNAUTHORIZED, f"bad {SIGNATURE_HEADER}")
        try:
            doc = parse_notification(body)
        except Malformed as exc:
            log.warning("store %s: signed but malformed notification rejected: %s", store_id, exc)
            return Outcome(HTTPStatus.BAD_REQUEST, str(exc))
        number, event = str(doc["operationNumber"]).strip(), doc["eventType"].strip()
        path = self.landing / "statements" / store_id / NOTIFICATIONS_FOLDER / f"{file_stem(number)}.json"
        where = path.relative_to(self.landing).as_posix()
        try:
            written = write_new(path, body)
        except OSError as exc:
            log.error("store %s: could not write %s: %s", store_id, where, exc.strerror or type(exc).__name__)
            return Outcome(HTTPStatus.INTERNAL_SERVER_ERROR, "could not store the notification; retry later")
        shown = f"{_printable(event)} operationNumber {_printable(number)}"
        if written:
            log.info("store %s: accepted %s -> landing/%s", store_id, shown, where)
            return Outcome(HTTPStatus.OK, "accepted")
        if _read(path) != body:
            log.warning("store %s: %s delivered again with a different body; kept the first (landing/%s)", store_id, shown, where)
        else:
            log.info("store %s: %s delivered again; already in landing/%s", store_id, shown, where)
        return Outcome(HTTPStatus.OK, "duplicate")


def _printable(value: str, limit: int = 80) -> str:
    """An identifier from the request as one short log-safe line (no newlines to forge entries).
    eventType and operationNumber are PagoEfectivo's identifiers, not personal data; the `data`
    part of a notification (payer email, document) is never logged."""
    return value.encode("unicode_escape").decode("ascii")[:limit]


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


class _Handler(BaseHTTPRequestHandler):
    server: NotificationServer
    server_version = "pagorecon-webhook"
    sys_version = ""
    timeout = 30  # seconds a slow client may take to send its request

    def do_POST(self) -> None:
        match = ROUTE.match(urlsplit(self.path).path)
        if not match or not self.server.receiver.knows(match["store"]):
            self._answer(Outcome(HTTPStatus.NOT_FOUND, "unknown path; POST /notifications/<store_id>"), close=True)
            return
        if self.headers.get("Transfer-Encoding"):
            self._answer(Outcome(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length, not chunked"), close=True)
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self._answer(Outcome(HTTPStatus.LENGTH_REQUIRED, "Content-Length required"), close=True)
            return
        if not length_text.strip().isdigit():
            self._answer(Outcome(HTTPStatus.BAD_REQUEST, "bad Content-Length"), close=True)
            return
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            log.warning("store %s: %d-byte notification refused (limit %d)", match["store"], length, MAX_BODY_BYTES)
            self._answer(Outcome(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes"), close=True)
            self._discard(length)
            return
        body = self.rfile.read(length)
        if len(body) != length:
            self._answer(Outcome(HTTPStatus.BAD_REQUEST, "body shorter than Content-Length"), close=True)
            return
        self._answer(self.server.receiver.receive(match["store"], body, self.headers.get(SIGNATURE_HEADER)))

    def _discard(self, length: int) -> None:
        """Read and drop what the client is still sending (bounded, never kept), so it can read the
        413 instead of seeing its upload reset by our close."""
        self.connection.settimeout(DISCARD_SECONDS)
        left = min(length, DISCARD_LIMIT_BYTES)
        try:
            while left > 0 and (chunk := self.rfile.read1(min(left, 1 << 16))):
                left -= len(chunk)
        except OSError:
            pass

    def _not_allowed(self) -> None:
        self._answer(Outcome(HTTPStatus.METHOD_NOT_ALLOWED, "only POST"), close=True, allow="POST")

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed

    def _answer(self, outcome: Outcome, *, close: bool = False, allow: str | None = None) -> None:
        payload = json.dumps({"status": outcome.status.value, "message": outcome.message}).encode("utf-8")
        self.send_response(outcome.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if allow:
            self.send_header("Allow", allow)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), _printable(mask_text(format % args), limit=300))


class NotificationServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: NotificationReceiver):
        super().__init__(address, _Handler)
        self.receiver = receiver

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def make_server(settings: Settings, host: str = "127.0.0.1", port: int = 8787,
                environ: Mapping[str, str] | None = None) -> NotificationServer:
    return NotificationServer((host, port), NotificationReceiver(settings, environ))
