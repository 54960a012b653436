"""`pagorecon webhook serve`: a real server on loopback receiving notifications signed like
PagoEfectivo's, landing them durably, and what the pipeline then makes of them."""

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.pagoefectivo.sandbox import notification_body, send_notification
from pagorecon_dagster.pagoefectivo.webhook import MAX_BODY_BYTES, file_stem, make_server, sign

SECRET = "whsec-9f3b!never-logged"


@pytest.fixture
def webhook(home):
    server = make_server(load_settings(home.path), "127.0.0.1", 0, environ={"PAGORECON_PE_SHOP_SECRET_KEY": SECRET})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def url(server, store="shop"):
    return f"{server.url}/notifications/{store}"


def landed(home, store="shop"):
    folder = home.path / "landing" / "statements" / store / "notifications"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


PAID = notification_body("OP-1001", "90000001", "A1", "100.50", payment_date="2026-07-14T20:15:00-05:00")


def test_signature_exact_value():
    # Expected value computed outside Python:
    # printf '%s' '{"eventType": "cip.paid", "operationNumber": "OP-1"}' | openssl dgst -sha256 -hmac 's3cr3t+Key/42'
    assert sign(b'{"eventType": "cip.paid", "operationNumber": "OP-1"}', "s3cr3t+Key/42") == (
        "442529fc280331cee27199e23ddd62f45f07229e1b863d7a2ef5b2948bcf3410"
    )


def test_a_valid_notification_lands_byte_for_byte_and_ingests(home, webhook):
    response = send_notification(url(webhook), PAID, SECRET)
    assert (response.status_code, response.json()) == (200, {"status": 200, "message": "accepted"})
    assert landed(home) == ["OP-1001.json"]
    assert (home.path / "landing/statements/shop/notifications/OP-1001.json").read_bytes() == PAID

    home.orders("A1,2026-07-14 09:55:00,pending,PEN,100.50,0.00,PagoEfectivo,,,\n")
    home.run("2026-07-14", "2026-07-14", stores=["shop"])
    assert home.query("SELECT cip, operation_number, status, amount_cents, origin, CAST(payment_date AS VARCHAR) AS day FROM payments") == [
        {"cip": "90000001", "operation_number": "OP-1001", "status": "paid", "amount_cents": 10050,
         "origin": "notification", "day": "2026-07-14"}
    ]
    assert [(i["order_id"], i["status"]) for i in home.items()] == [("A1", "MATCHED")]


@pytest.mark.parametrize(
    "signature",
    [None, "", "0" * 64, "not-hex-at-all-ñ", sign(PAID, "another-secret")],
    ids=["missing", "empty", "zeros", "garbage", "other-key"],
)
def test_a_missing_or_bad_signature_is_401_and_nothing_lands(home, webhook, signature):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["PE-Signature"] = signature
    response = requests.post(url(webhook), data=PAID, headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json()["message"] in ("missing PE-Signature header", "bad PE-Signature")
    assert landed(home) == []


def test_the_signature_header_is_case_insensitive_hex(home, webhook):
    response = send_notification(url(webhook), PAID, None, signature=sign(PAID, SECRET).upper())
    assert response.status_code == 200 and landed(home) == ["OP-1001.json"]


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"eventType": "cip.paid", "operationNumber": ', "the body is not UTF-8 JSON"),
        (b"\xff\xfe not utf-8", "the body is not UTF-8 JSON"),
        (b"[]", "the body must be a JSON object {eventType, operationNumber, data}"),
        (b'{"operationNumber": "OP-1", "data": {}}', "`eventType` must be a non-empty string"),
        (b'{"eventType": "cip.paid", "operationNumber": "  ", "data": {}}', "`operationNumber` must be a non-empty string or number"),
        (b'{"eventType": "cip.paid", "operationNumber": true, "data": {}}', "`operationNumber` must be a non-empty string or number"),
        (b'{"eventType": "cip.paid", "operationNumber": "OP-1", "data": "90000001"}',
         "`data` must be an object {cip, currency, amount, paymentDate, transactionCode}"),
    ],
    ids=["truncated-json", "not-utf8", "list", "no-event", "blank-operation", "bool-operation", "data-not-object"],
)
def test_a_signed_but_malformed_body_is_400_and_nothing_lands(home, webhook, body, message):
    response = send_notification(url(webhook), body, SECRET)
    assert (response.status_code, response.json()["message"]) == (400, message)
    assert landed(home) == []


def test_a_repeated_operation_number_is_the_same_notification(home, webhook, caplog):
    caplog.set_level(logging.INFO, logger="pagorecon.webhook")
    first, again = (send_notification(url(webhook), PAID, SECRET) for _ in range(2))
    assert [first.json()["message"], again.json()["message"]] == ["accepted", "duplicate"]
    assert again.status_code == 200

    # Same operationNumber, other content (a retry that changed): the first body stays, the other is kept beside.
    altered = notification_body("OP-1001", "90000001", "A1", "999.00")
    response = send_notification(url(webhook), altered, SECRET)
    assert (response.status_code, response.json()["message"]) == (200, "conflict kept")
    assert landed(home)[0] == "OP-1001.json" and len(landed(home)) == 2
    assert (home.path / "landing/statements/shop/notifications/OP-1001.json").read_bytes() == PAID
    assert "cip.paid operationNumber OP-1001 delivered again with a different body; kept both" in caplog.text


def test_concurrent_deliveries_of_one_notification_land_once(home, webhook):
    barrier = threading.Barrier(8)
    answers = []

    def deliver():
        barrier.wait()
        answers.append(send_notification(url(webhook), PAID, SECRET).json()["message"])

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(answers) == ["accepted"] + ["duplicate"] * 7
    assert landed(home) == ["OP-1001.json"]


def test_an_oversized_body_is_413_and_the_limit_itself_is_accepted(home, webhook):
    too_big = PAID + b" " * (MAX_BODY_BYTES + 1 - len(PAID))
    response = send_notification(url(webhook), too_big, SECRET)
    assert (response.status_code, response.json()["message"]) == (413, f"body over {MAX_BODY_BYTES} bytes")
    assert landed(home) == []

    exactly = PAID + b" " * (MAX_BODY_BYTES - len(PAID))  # trailing blanks are still one JSON object
    assert send_notification(url(webhook), exactly, SECRET).status_code == 200
    assert (home.path / "landing/statements/shop/notifications/OP-1001.json").stat().st_size == MAX_BODY_BYTES


def test_unknown_store_path_and_method(home, webhook):
    assert send_notification(url(webhook, "nope"), PAID, SECRET).status_code == 404
    assert requests.post(f"{webhook.url}/notifications/shop/extra", data=PAID, timeout=5).status_code == 404
    assert requests.post(f"{webhook.url}/", data=PAID, timeout=5).status_code == 404
    get = requests.get(url(webhook), timeout=5)
    assert (get.status_code, get.headers["Allow"]) == (405, "POST")
    # A store of pagorecon.yaml without a secret key cannot verify anything: 503, PagoEfectivo retries later.
    assert send_notification(url(webhook, "shopi"), PAID, SECRET).status_code == 503
    assert landed(home) == [] and landed(home, "shopi") == []


@pytest.mark.new_home  # the warehouse must not appear
def test_operation_numbers_never_escape_the_notifications_folder(home, webhook):
    body = notification_body("../../pagorecon", "90000009", "A9", "1.00")
    assert send_notification(url(webhook), body, SECRET).status_code == 200
    assert file_stem("../../pagorecon") == "______pagorecon_" + hashlib.sha256(b"../../pagorecon").hexdigest()[:8]
    assert landed(home) == [file_stem("../../pagorecon") + ".json"]
    assert file_stem("OP_1") != file_stem("OP/1") and file_stem("12345") == "12345"
    assert sorted(p.name for p in home.path.iterdir()) == ["landing", "pagorecon.yaml"]


def test_logs_hold_neither_the_secret_nor_personal_data(home, webhook, caplog):
    caplog.set_level(logging.DEBUG)
    personal = json.dumps({"eventType": "cip.paid", "operationNumber": "OP-7",
                           "data": {"cip": "90000007", "currency": "PEN", "amount": "10.00", "transactionCode": "A7",
                                    "paymentDate": "2026-07-14T20:00:00-05:00", "userEmail": "josé.peña@example.pe",
                                    "userDocumentNumber": "45781236"}}).encode()
    send_notification(url(webhook), personal, SECRET)
    send_notification(url(webhook), personal, "wrong")
    send_notification(url(webhook), b"{", SECRET)
    forged_line = notification_body("OP-8\nstore shop: accepted everything", "90000008", "A8", "1.00")
    send_notification(url(webhook), forged_line, SECRET)
    text = caplog.text
    assert "store shop: accepted cip.paid operationNumber OP-7 -> landing/statements/shop/notifications/OP-7.json" in text
    assert "operationNumber OP-8\\nstore shop: accepted everything -> " in text  # one log line, not two
    assert "wrong PE-Signature rejected" in text
    for secret_or_personal in (SECRET, "peña", "45781236"):
        assert secret_or_personal not in text
    files = [p for p in home.path.rglob("*") if p.is_file()]
    assert not any(SECRET.encode() in p.read_bytes() for p in files)


def test_cli_notify_signs_with_the_store_secret(home, webhook, monkeypatch, tmp_path, capsys):
    from pagorecon_dagster.cli import main

    monkeypatch.setenv("PAGORECON_PE_SHOP_SECRET_KEY", SECRET)
    (tmp_path / "paid.json").write_bytes(PAID)
    code = main(["--home", str(home.path), "pagoefectivo", "notify", "--store", "shop", "--url", webhook.url, str(tmp_path / "paid.json")])
    assert code == 0
    assert capsys.readouterr().out == f'POST {url(webhook)}: HTTP 200 {{"status": 200, "message": "accepted"}}\n'
    assert (home.path / "landing/statements/shop/notifications/OP-1001.json").read_bytes() == PAID


def test_cli_serves_until_sigterm(home, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PAGORECON_PE_SHOP_SECRET_KEY": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "pagorecon_dagster.cli", "--home", str(home.path), "webhook", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the webhook server did not start"
                time.sleep(0.05)
        response = send_notification(f"http://127.0.0.1:{port}/notifications/shop", PAID, SECRET)
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    log = stderr.decode()
    assert "store shop: accepted cip.paid operationNumber OP-1001" in log
    assert SECRET not in log
    assert landed(home) == ["OP-1001.json"]
