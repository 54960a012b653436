"""What every loopback sandbox API shares: a threaded HTTP server on 127.0.0.1 (port 0 picks a free
one) that starts and stops as a context manager, and, for the sandboxes that answer one request at a
time, the recording of every request and injected faults (`fail_next`, `slow_next`).

A sandbox built on `SandboxApi` only says what its service answers (`answer`) and what an injected
failure looks like (`fault_reply`)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pagorecon_dagster.pagoefectivo.client import dumps_exact, loads_exact


class LoopbackServer:
    """A threaded HTTP server serving `handler` at `url` until `stop()`; `with` starts and stops it."""

    name = "sandbox"                  # the serving thread's name
    wait_for_requests_on_stop = False  # True: `stop()` returns only once every request was answered

    def __init__(self, handler: type[BaseHTTPRequestHandler], *, host: str = "127.0.0.1", port: int = 0):
        self._server = _Server((host, port), handler, self)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Serve in this thread (a command line's sandbox) until interrupted."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], sandbox: LoopbackServer):
        self.block_on_close = sandbox.wait_for_requests_on_stop
        super().__init__(address, handler)
        self.sandbox = sandbox

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up on a slow answer closed its socket: expected here


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str                 # without the query string
    headers: dict[str, str]   # names in lower case
    body: bytes = b""
    query: dict[str, str] = field(default_factory=dict)   # the last value of each parameter

    def json(self) -> Any:
        return loads_exact(self.body)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, doc: Any, headers: dict[str, str] | None = None,
               content_type: str = "application/json; charset=utf-8") -> Reply:
    return Reply(status, dumps_exact(doc).encode("utf-8"), content_type, headers or {})


@dataclass
class Fault:
    remaining: int
    path: str | None            # only calls to this path, or any
    status: int | None = None   # answer this instead of the real reply
    delay: float = 0.0          # wait this long first
    retry_after: str | None = None


class SandboxApi(LoopbackServer):
    """A `LoopbackServer` whose requests are recorded in `requests`, then failed as injected or
    answered by `answer`."""

    server_version = "sandbox"
    fail_status = 500   # what `fail_next` answers unless told

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0):
        super().__init__(_Handler, host=host, port=port)
        self.requests: list[Any] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def fail_next(self, count: int, status: int | None = None, path: str | None = None,
                  retry_after: str | None = None) -> None:
        """The next `count` calls (to `path`, or any) answer `status` with the sandbox's error body
        (`fault_reply`, which may send `retry_after` as `Retry-After`)."""
        with self._lock:
            self._faults.append(Fault(count, path, status=status or self.fail_status, retry_after=retry_after))

    def slow_next(self, count: int, seconds: float, path: str | None = None) -> None:
        """The next `count` calls (to `path`, or any) wait `seconds` before answering."""
        with self._lock:
            self._faults.append(Fault(count, path, delay=seconds))

    def record(self, request: RecordedRequest) -> Any:
        """What `requests` keeps of a request."""
        return request

    def answer(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def fault_reply(self, fault: Fault) -> Reply:
        return json_reply(fault.status or 500, {"error": "sandbox: injected failure"})

    def respond(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(self.record(request))
            fault = next((f for f in self._faults if f.remaining > 0 and f.path in (None, request.path)), None)
            if fault:
                fault.remaining -= 1
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.status:
            return self.fault_reply(fault)
        return self.answer(request)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        sandbox: SandboxApi = self.server.sandbox  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = RecordedRequest(self.command, parts.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                  {k: v[-1] for k, v in parse_qs(parts.query).items()})
        reply = sandbox.respond(request)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, text in reply.headers.items():
            self.send_header(name, text)
        self.end_headers()
        self.wfile.write(reply.body)

    do_POST = do_GET = do_PUT = do_DELETE = _serve

    def version_string(self) -> str:
        return self.server.sandbox.server_version  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # every request is in `sandbox.requests`
