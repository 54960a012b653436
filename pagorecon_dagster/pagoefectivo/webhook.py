"""`pagorecon webhook serve`: the endpoint PagoEfectivo POSTs payment notifications to.

`POST /notifications/<store_id>` with header `PE-Signature` = lowercase hex HMAC-SHA256 of the
raw body keyed with the store's own secret key. An accepted notification is written, byte for
byte, to `landing/statements/<store_id>/notifications/<operationNumber>.json` and made durable
before the 200 goes out, so a 200 is never a lost payment. A repeated `operationNumber` with the
same body is the same notification: 200, nothing written. With a different body it is a
conflict: kept beside the first as `<operationNumber>~conflict-<sha8>.json` (never overwriting
it), 200, and the NOTIFICATION_CONFLICT alert shows it to a person.

Answers: 200 accepted, duplicate or conflict kept, 400 malformed body, 401 missing or bad
signature, 403 the body names another store's service, 404 unknown path or store, 405 other
methods, 408 request not received in time, 411 no Content-Length, 413 body over 1 MiB, 500 the
file could not be written (PagoEfectivo will retry), 503 the store's keys are not configured
(or over capacity).

Served by uvicorn (asyncio): a held connection costs no thread, the listen backlog takes a burst,
concurrency is bounded and a request not fully received within the read timeout is cut off."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pagorecon_dagster.config import Settings
from pagorecon_dagster.ingestion.readers import json_depth_problem
from pagorecon_dagster.pagoefectivo import credentials
from pagorecon_dagster.pagoefectivo.landing import remove_stale_partials, write_new

log = logging.getLogger("pagorecon.webhook")

SIGNATURE_HEADER = "PE-Signature"
MAX_BODY_BYTES = 1 << 20
# An oversized upload is drained (and dropped) up to this much, for this long, so the client reads the 413.
DISCARD_LIMIT_BYTES, DISCARD_SECONDS = 64 << 20, 2.0
READ_TIMEOUT_SECONDS = 10.0  # for the request head, then again for the body
BACKLOG = 2048  # connections the kernel queues before we accept them (a burst of retries)
LIMIT_CONCURRENCY = 1024  # open connections + requests in flight; more get 503 (PagoEfectivo retries)
KEEP_ALIVE_SECONDS = 5
NOTIFICATIONS_FOLDER = "notifications"
CONFLICT_MARK = "~conflict-"  # `~` sorts after `.`: the first delivery's file is ingested first
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
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Malformed("the body is not UTF-8 JSON") from None
    # The same nesting cap as a landed JSON file, found before the (recursive) parser runs.
    deep = json_depth_problem(text)
    if deep:
        raise Malformed(deep)
    try:
        doc = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError):
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


def named_services(doc: dict[str, Any]) -> set[str]:
    """The PagoEfectivo service ids a notification names (`idService`, top level or in `data`)."""
    found = (doc.get("idService"), doc["data"].get("idService"))
    return {str(value).strip() for value in found if value is not None and str(value).strip()}


@dataclass(frozen=True)
class Outcome:
    status: HTTPStatus
    message: str


class NotificationReceiver:
    """What the endpoint does with one request, apart from HTTP: verify, parse, land."""

    def __init__(self, settings: Settings, environ: Mapping[str, str]):
        """`environ`: the PAGORECON_PE_* credentials, as the `PagoEfectivoApi` resource holds them."""
        self.landing = settings.landing
        self.secrets = {store_id: credentials.secret_key(store_id, environ) for store_id in settings.store_ids}
        self.services = {store_id: credentials.lookup(store_id, credentials.SERVICE_ID, environ) for store_id in settings.store_ids}
        self.problems: dict[str, str] = {}
        unconfigured = [store_id for store_id, secret in self.secrets.items() if secret is None]
        for store_id in unconfigured:
            variable = credentials.env_names(store_id, credentials.SECRET_KEY)[0]
            self.problems[store_id] = f"store {store_id!r} has no secret key configured ({variable})"
            log.warning("no secret key for store %s: its notifications get 503 until %s is set", store_id, variable)
        by_secret: dict[str, list[str]] = {}
        for store_id, secret in self.secrets.items():
            if secret is not None:
                by_secret.setdefault(secret, []).append(store_id)
        for sharing in (stores for stores in by_secret.values() if len(stores) > 1):
            names = " and ".join(credentials.env_names(store_id, credentials.SECRET_KEY)[0] for store_id in sharing)
            log.error("%s hold the same secret key: a body signed for one would pass at the other; their "
                      "notifications get 503 until each store has its own", names)
            for store_id in sharing:
                self.problems[store_id] = f"store {store_id!r} has the same secret key as another store; give each store its own"
        removed = remove_stale_partials(self.landing / "statements")
        if removed:
            log.info("removed %d partial file(s) left by an interrupted write", len(removed))

    def knows(self, store_id: str) -> bool:
        return store_id in self.secrets

    def receive(self, store_id: str, body: bytes, signature: str | None) -> Outcome:
        if store_id not in self.secrets:
            return Outcome(HTTPStatus.NOT_FOUND, f"unknown store {store_id!r}")
        if store_id in self.problems:
            return Outcome(HTTPStatus.SERVICE_UNAVAILABLE, self.problems[store_id])
        secret = self.secrets[store_id]
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
        named = named_services(doc)
        if named and self.services[store_id] is None:
            variable = credentials.env_names(store_id, credentials.SERVICE_ID)[0]
            log.warning("store %s: the body names an idService; set %s to check it", store_id, variable)
            return Outcome(HTTPStatus.SERVICE_UNAVAILABLE, f"the body names an idService; set {variable} to check it")
        if named - {self.services[store_id]}:
            log.warning("store %s: notification naming another idService rejected", store_id)
            return Outcome(HTTPStatus.FORBIDDEN, f"the body's idService is not the service of store {store_id!r}")
        return self._land(store_id, doc, body)

    def _land(self, store_id: str, doc: dict[str, Any], body: bytes) -> Outcome:
        number, event = str(doc["operationNumber"]).strip(), doc["eventType"].strip()
        folder = self.landing / "statements" / store_id / NOTIFICATIONS_FOLDER
        path = folder / f"{file_stem(number)}.json"
        shown = f"{_printable(event)} operationNumber {_printable(number)}"
        try:
            if write_new(path, body):
                log.info("store %s: accepted %s -> landing/%s", store_id, shown, _where(self.landing, path))
                return Outcome(HTTPStatus.OK, "accepted")
            if path.read_bytes() == body:
                log.info("store %s: %s delivered again; already in landing/%s", store_id, shown, _where(self.landing, path))
                return Outcome(HTTPStatus.OK, "duplicate")
            conflict = folder / f"{file_stem(number)}{CONFLICT_MARK}{hashlib.sha256(body).hexdigest()[:8]}.json"
            if not write_new(conflict, body):
                log.info("store %s: %s delivered again; already in landing/%s", store_id, shown, _where(self.landing, conflict))
                return Outcome(HTTPStatus.OK, "duplicate")
        except OSError as exc:
            log.error("store %s: could not write %s: %s", store_id, _where(self.landing, path), exc.strerror or type(exc).__name__)
            return Outcome(HTTPStatus.INTERNAL_SERVER_ERROR, "could not store the notification; retry later")
        log.warning("store %s: %s delivered again with a different body; kept both: landing/%s and landing/%s",
                    store_id, shown, _where(self.landing, path), _where(self.landing, conflict))
        return Outcome(HTTPStatus.OK, "conflict kept")


def _where(landing: Path, path: Path) -> str:
    return path.relative_to(landing).as_posix()


def _printable(value: str, limit: int = 80) -> str:
    """An identifier from the request as one short log-safe line (no newlines to forge entries).
    eventType and operationNumber are PagoEfectivo's identifiers, not personal data; the `data`
    part of a notification (payer email, document) is never logged."""
    return value.encode("unicode_escape").decode("ascii")[:limit]


# --- HTTP -------------------------------------------------------------------------------------------


class NotificationApp:
    """The ASGI application: routing, Content-Length, body limits and timeouts; the receiver
    (blocking: fsync) runs in a worker thread so the event loop keeps accepting."""

    def __init__(self, receiver: NotificationReceiver, read_timeout: float = READ_TIMEOUT_SECONDS):
        self.receiver = receiver
        self.read_timeout = read_timeout

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        outcome, close, allow = await self._handle(scope, receive)
        payload = json.dumps({"status": outcome.status.value, "message": outcome.message}).encode("utf-8")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        if allow:
            headers.append((b"allow", allow.encode()))
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": outcome.status.value, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload})

    async def _handle(self, scope, receive) -> tuple[Outcome, bool, str | None]:
        if scope["method"] != "POST":
            return Outcome(HTTPStatus.METHOD_NOT_ALLOWED, "only POST"), True, "POST"
        match = ROUTE.match(scope["path"])
        if not match or not self.receiver.knows(match["store"]):
            return Outcome(HTTPStatus.NOT_FOUND, "unknown path; POST /notifications/<store_id>"), True, None
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        if "transfer-encoding" in headers:
            return Outcome(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length, not chunked"), True, None
        length_text = headers.get("content-length")
        if length_text is None:
            return Outcome(HTTPStatus.LENGTH_REQUIRED, "Content-Length required"), True, None
        if not length_text.strip().isdigit():
            return Outcome(HTTPStatus.BAD_REQUEST, "bad Content-Length"), True, None
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            log.warning("store %s: %d-byte notification refused (limit %d)", match["store"], length, MAX_BODY_BYTES)
            await self._discard(receive, min(length, DISCARD_LIMIT_BYTES))
            return Outcome(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY_BYTES} bytes"), True, None
        chunks, received = [], 0
        with anyio.move_on_after(self.read_timeout) as waited:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return Outcome(HTTPStatus.BAD_REQUEST, "body shorter than Content-Length"), True, None
                chunks.append(message.get("body", b""))
                received += len(chunks[-1])
                if not message.get("more_body", False):
                    break
        if waited.cancelled_caught:
            log.warning("store %s: request body not received within %g s; cut off", match["store"], self.read_timeout)
            return Outcome(HTTPStatus.REQUEST_TIMEOUT, f"body not received within {self.read_timeout:g} s"), True, None
        body = b"".join(chunks)
        outcome = await anyio.to_thread.run_sync(self.receiver.receive, match["store"], body, headers.get(SIGNATURE_HEADER.lower()))
        return outcome, False, None

    async def _discard(self, receive, limit: int) -> None:
        """Read and drop what the client is still sending (bounded, never kept)."""
        left = limit
        with anyio.move_on_after(DISCARD_SECONDS):
            while left > 0:
                message = await receive()
                left -= len(message.get("body", b""))
                if message["type"] == "http.disconnect" or not message.get("more_body", False):
                    return


class _HeadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, plus a deadline for the request head: uvicorn times out idle
    keep-alive connections but not a client that sends its headers a byte at a time."""

    read_timeout = READ_TIMEOUT_SECONDS
    _head_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._arm()  # the next request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self.read_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.warning("request head not received within %g s; cut off", self.read_timeout)
            payload = b'{"status": 408, "message": "request head not received in time"}'
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                 b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(payload), payload))
            self.transport.close()


class NotificationServer:
    """A uvicorn server on a socket bound up front (so a taken port fails at once, and `url` is
    known before serving): `serve_forever()` in one thread, `shutdown()` from another."""

    def __init__(self, sock: socket.socket, receiver: NotificationReceiver, read_timeout: float = READ_TIMEOUT_SECONDS):
        self.socket = sock
        self.receiver = receiver
        protocol = type("NotificationProtocol", (_HeadDeadlineProtocol,), {"read_timeout": read_timeout})
        config = uvicorn.Config(
            NotificationApp(receiver, read_timeout), http=protocol, lifespan="off", log_config=None,
            access_log=False, backlog=BACKLOG, limit_concurrency=LIMIT_CONCURRENCY,
            timeout_keep_alive=KEEP_ALIVE_SECONDS, timeout_graceful_shutdown=10, server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        """Serve until `shutdown()` or, in the main thread, SIGINT/SIGTERM (requests in flight finish)."""
        self._stopped.clear()
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self, timeout: float = 30.0) -> None:
        self._server.should_exit = True
        self._stopped.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()


def make_server(settings: Settings, host: str = "127.0.0.1", port: int = 8787,
                *, environ: Mapping[str, str], read_timeout: float = READ_TIMEOUT_SECONDS) -> NotificationServer:
    receiver = NotificationReceiver(settings, environ)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return NotificationServer(sock, receiver, read_timeout)
