"""The notification endpoint under a burst and under attack: a real server on loopback, real
sockets, real files, and the alert a conflicting notification raises in a real Dagster run."""

import importlib.util
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from test_pagoefectivo_webhook import landed, url

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.ingestion.readers import MAX_JSON_DEPTH
from pagorecon_dagster.pagoefectivo import credentials
from pagorecon_dagster.pagoefectivo.sandbox import notification_body, send_notification
from pagorecon_dagster.pagoefectivo.webhook import make_server, sign

SHOP_SECRET, SHOPI_SECRET = "whsec-shop-7c1e", "whsec-shopi-0a9d"
BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "webhook_load.py"
PAID = notification_body("OP-1001", "90000001", "A1", "100.50", payment_date="2026-07-14T20:15:00-05:00")


def serve(home, environ, **options):
    server = make_server(load_settings(home.path), "127.0.0.1", 0, environ=environ, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def start(home):
    started = []

    def _start(environ=None, **options):
        environ = {"PAGORECON_PE_SHOP_SECRET_KEY": SHOP_SECRET, "PAGORECON_PE_SHOPI_SECRET_KEY": SHOPI_SECRET} if environ is None else environ
        server, thread = serve(home, environ, **options)
        started.append((server, thread))
        return server

    yield _start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def load_benchmark():
    spec = importlib.util.spec_from_file_location("webhook_load", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


# --- 8. a burst, and half-sent requests ------------------------------------------------------------


def test_500_concurrent_notifications_all_answered_200_and_landed(tmp_path):
    """The load generator of benchmarks/ against `pagorecon webhook serve` in its own process."""
    figures = load_benchmark().run_against_cli(tmp_path / "home", requests=500)
    assert (figures.ok, figures.errors, figures.files) == (500, 0, 500), figures.summary()
    assert figures.statuses == {200: 500}


def _half_sent(port: int, part: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(part)
    return sock


def test_half_sent_requests_neither_hold_threads_nor_starve_valid_ones(home, start):
    server = start(read_timeout=1.5)
    port = int(server.url.rsplit(":", 1)[1])
    body = notification_body("OP-SLOW", "90000002", "A2", "1.00")
    head = (f"POST /notifications/shop HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
            f"PE-Signature: {sign(body, SHOP_SECRET)}\r\n\r\n").encode()
    threads_before = threading.active_count()
    slow = [_half_sent(port, head[:40]) for _ in range(150)]            # headers cut short
    slow += [_half_sent(port, head + body[:10]) for _ in range(150)]    # body cut short
    time.sleep(0.3)
    assert threading.active_count() - threads_before < 20  # not one thread per held connection

    answers, began = [], time.monotonic()

    def deliver(n):
        answers.append(send_notification(url(server), notification_body(f"OP-{n}", f"9100{n:04d}", f"B{n}", "5.00"), SHOP_SECRET).status_code)

    valid = [threading.Thread(target=deliver, args=(n,)) for n in range(30)]
    for t in valid:
        t.start()
    for t in valid:
        t.join(timeout=20)
    assert answers == [200] * 30 and time.monotonic() - began < 1.5
    assert len([n for n in landed(home) if n.startswith("OP-") and n != "OP-SLOW.json"]) == 30

    # Every half-sent request is cut off by the read timeout: a 408 or a closed socket, never a hang.
    cut = 0
    for sock in slow:
        sock.settimeout(10)
        try:
            reply = sock.recv(200)
        except ConnectionResetError:
            reply = b""
        assert reply == b"" or reply.startswith(b"HTTP/1.1 408"), reply
        cut += 1
        sock.close()
    assert cut == 300 and "OP-SLOW.json" not in landed(home)


# --- 9. a signature binds a body to one store ---------------------------------------------------------


def test_there_is_no_shared_secret_fallback(home, start):
    server = start({"PAGORECON_PE_SECRET_KEY": SHOP_SECRET})
    for store in ("shop", "shopi"):
        response = send_notification(url(server, store), PAID, SHOP_SECRET)
        assert response.status_code == 503, store
    assert credentials.secret_key("shop", {"PAGORECON_PE_SECRET_KEY": SHOP_SECRET}) is None
    assert landed(home) == [] and landed(home, "shopi") == []


def test_a_body_signed_for_one_store_is_refused_at_another(home, start):
    server = start()
    assert send_notification(url(server, "shopi"), PAID, SHOP_SECRET).status_code == 401
    assert send_notification(url(server, "shop"), PAID, SHOP_SECRET).status_code == 200
    assert landed(home) == ["OP-1001.json"] and landed(home, "shopi") == []


def test_two_stores_given_one_secret_are_both_refused(home, start, caplog):
    caplog.set_level(logging.WARNING, logger="pagorecon.webhook")
    server = start({"PAGORECON_PE_SHOP_SECRET_KEY": SHOP_SECRET, "PAGORECON_PE_SHOPI_SECRET_KEY": SHOP_SECRET})
    for store in ("shop", "shopi"):
        response = send_notification(url(server, store), PAID, SHOP_SECRET)
        assert response.status_code == 503 and "same secret key" in response.json()["message"]
    assert "PAGORECON_PE_SHOP_SECRET_KEY and PAGORECON_PE_SHOPI_SECRET_KEY hold the same secret key" in caplog.text
    assert SHOP_SECRET not in caplog.text
    assert landed(home) == [] and landed(home, "shopi") == []


def _with_service(body: bytes, service, where="data") -> bytes:
    doc = json.loads(body)
    (doc["data"] if where == "data" else doc)["idService"] = service
    return json.dumps(doc).encode()


def test_a_body_naming_another_service_is_refused(home, start):
    server = start({"PAGORECON_PE_SHOP_SECRET_KEY": SHOP_SECRET, "PAGORECON_PE_SHOP_SERVICE_ID": "1001"})
    other = _with_service(PAID, 2002)
    response = send_notification(url(server), other, SHOP_SECRET)
    assert (response.status_code, response.json()["message"]) == (403, "the body's idService is not the service of store 'shop'")
    assert send_notification(url(server), _with_service(PAID, "2002", where="top"), SHOP_SECRET).status_code == 403
    assert landed(home) == []
    assert send_notification(url(server), _with_service(PAID, 1001), SHOP_SECRET).status_code == 200
    assert landed(home) == ["OP-1001.json"]


def test_a_body_naming_a_service_needs_the_store_service_id(home, start):
    server = start({"PAGORECON_PE_SHOP_SECRET_KEY": SHOP_SECRET})
    response = send_notification(url(server), _with_service(PAID, 1001), SHOP_SECRET)
    assert response.status_code == 503 and "PAGORECON_PE_SHOP_SERVICE_ID" in response.json()["message"]
    assert landed(home) == []


# --- 10. conflicts, nesting, stale partial files ---------------------------------------------------------


def test_a_different_body_under_a_known_operation_number_is_kept_beside_and_alerted(home, start):
    server = start()
    altered = notification_body("OP-1001", "90000001", "A1", "999.00", payment_date="2026-07-14T20:15:00-05:00")
    answers = [send_notification(url(server), body, SHOP_SECRET).json()["message"] for body in (PAID, altered, altered, PAID)]
    assert answers == ["accepted", "conflict kept", "duplicate", "duplicate"]
    files = landed(home)
    assert len(files) == 2 and files[0] == "OP-1001.json" and files[1].startswith("OP-1001~conflict-")
    folder = home.path / "landing/statements/shop/notifications"
    assert (folder / files[0]).read_bytes() == PAID and (folder / files[1]).read_bytes() == altered

    home.orders("A1,2026-07-14 09:55:00,pending,PEN,100.50,0.00,PagoEfectivo,,,\n")
    home.run("2026-07-14", "2026-07-14", stores=["shop"])
    # The first delivery is the payment; the conflict is for a person.
    assert home.query("SELECT cip, amount_cents FROM payments") == [{"cip": "90000001", "amount_cents": 10050}]
    alerts = home.query("SELECT alert_id, severity, value, message FROM alerts WHERE kind = 'NOTIFICATION_CONFLICT'")
    assert alerts == [{
        "alert_id": "NOTIFICATION_CONFLICT|shop|2026-07-14", "severity": "critical", "value": "1 operationNumbers",
        "message": "1 operationNumber(s) notified on 2026-07-14 with different contents: operationNumber OP-1001 "
                   f"(CIP 90000001) in landing/statements/shop/notifications/OP-1001.json, landing/statements/shop/notifications/{files[1]}. "
                   "The first delivery counts; check the others with PagoEfectivo.",
    }]


def test_the_same_notification_twice_raises_no_conflict(home, start):
    server = start()
    for _ in range(2):
        send_notification(url(server), PAID, SHOP_SECRET)
    home.drop("statements/shop/resent.json", PAID)  # the same notification in a file dropped by hand
    home.run("2026-07-14", "2026-07-14", stores=["shop"])
    assert home.query("SELECT count(*) AS n FROM alerts WHERE kind = 'NOTIFICATION_CONFLICT'") == [{"n": 0}]


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_json_is_400_not_a_dropped_connection(home, start, opener):
    server = start()
    closer = "]" if opener == "[" else "}"
    nested = ('{"eventType": "cip.paid", "operationNumber": "OP-9", "data": ' + opener * 100_000 + "1"
              + closer * 100_000 + "}").encode()
    response = send_notification(url(server), nested, SHOP_SECRET)
    assert response.status_code == 400
    assert f"JSON nested deeper than {MAX_JSON_DEPTH} levels" in response.json()["message"]
    assert landed(home) == []
    assert send_notification(url(server), PAID, SHOP_SECRET).status_code == 200  # the server lives on


def test_stale_partial_files_are_removed_at_start(home, start):
    notifications = home.path / "landing/statements/shop/notifications"
    notifications.mkdir(parents=True)
    stale = [notifications / ".incoming-k3j2.partial", home.path / "landing/statements/shopi/.incoming-x9.partial"]
    stale[1].parent.mkdir(parents=True)
    fresh = notifications / ".incoming-live.partial"  # another writer's file, being written now
    for path in stale + [fresh]:
        path.write_bytes(b'{"eventType": "cip.pa')
    hour_ago = time.time() - 3600
    for path in stale:
        os.utime(path, (hour_ago, hour_ago))
    start()
    assert [p.exists() for p in stale] == [False, False]
    assert fresh.exists()
