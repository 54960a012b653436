"""The loopback server every sandbox API is built on: it serves on 127.0.0.1 while started, records
each request, and answers injected faults (by path, in order, slowly) before the service's reply."""

import socket

import pytest
import requests

from pagorecon_dagster.pagoefectivo.sandbox import PagoEfectivoSandbox
from pagorecon_dagster.refunds.sandbox_provider import SandboxRefundProvider
from pagorecon_dagster.sandbox.bcrp_api import BcrpSandbox
from pagorecon_dagster.sandbox.http import LoopbackServer, Reply, SandboxApi, json_reply
from pagorecon_dagster.sandbox.shopify_api import ShopifySandbox
from pagorecon_dagster.sandbox.woocommerce_api import WooCommerceSandbox


class Echo(SandboxApi):
    fail_status = 418

    def answer(self, request):
        if request.path == "/text":
            return Reply(200, b"plain", "text/plain", {"X-Seen": str(len(self.requests))})
        return json_reply(200, {"method": request.method, "path": request.path, "query": request.query,
                                "body": request.body.decode()})


def test_requests_are_recorded_and_answered_with_path_query_body_and_headers():
    with Echo() as echo:
        assert echo.url.startswith("http://127.0.0.1:") and not echo.url.endswith(":0")
        reply = requests.post(f"{echo.url}/a/b?x=1&x=2&y=z", data=b"hola", headers={"X-Key": "k"}, timeout=5)
        assert reply.json() == {"method": "POST", "path": "/a/b", "query": {"x": "2", "y": "z"}, "body": "hola"}
        text = requests.get(f"{echo.url}/text", timeout=5)
        assert (text.text, text.headers["Content-Type"], text.headers["X-Seen"]) == ("plain", "text/plain", "2")
    first = echo.requests[0]
    assert (first.method, first.path, first.body, first.headers["x-key"]) == ("POST", "/a/b", b"hola", "k")
    assert echo.requests[1].method == "GET"


def test_injected_faults_come_first_in_order_and_only_on_their_path():
    with Echo() as echo:
        echo.fail_next(1)
        echo.fail_next(1, status=503, path="/only", retry_after="7")
        echo.slow_next(1, 0.2, path="/slow")
        statuses = [requests.get(f"{echo.url}{path}", timeout=5) for path in ("/x", "/x", "/only", "/only")]
        assert [r.status_code for r in statuses] == [418, 200, 503, 200]
        assert statuses[2].headers.get("Retry-After") is None   # the service's fault_reply decides its headers
        slow = requests.get(f"{echo.url}/slow", timeout=5)
        assert slow.status_code == 200 and slow.elapsed.total_seconds() >= 0.2
    assert len(echo.requests) == 5


def test_stop_closes_the_port():
    with Echo() as echo:
        port = int(echo.url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_every_sandbox_api_is_served_by_the_one_loopback_server():
    for sandbox in (BcrpSandbox, ShopifySandbox, WooCommerceSandbox, PagoEfectivoSandbox):
        assert issubclass(sandbox, SandboxApi) and "start" not in vars(sandbox) and "fail_next" not in vars(sandbox)
    assert issubclass(SandboxRefundProvider, LoopbackServer) and "start" not in vars(SandboxRefundProvider)
