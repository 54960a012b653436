"""The PagoEfectivo API client against the sandbox on loopback: hashString, token reuse and
refresh, retries, paging, and pulled files that ingest through the real pipeline."""

import datetime as dt
import hashlib
import json
import logging
import socket
from decimal import Decimal

import pytest

from pagorecon_dagster.cli import main
from pagorecon_dagster.config import load_settings
from pagorecon_dagster.pagoefectivo.client import (
    AUTHORIZATIONS_PATH,
    CIPS_SEARCH_PATH,
    PagoEfectivoClient,
    PagoEfectivoError,
    date_request,
    hash_string,
)
from pagorecon_dagster.pagoefectivo.credentials import Credentials, MissingCredentials, credentials_for
from pagorecon_dagster.pagoefectivo.pull import pull_cips
from pagorecon_dagster.pagoefectivo.sandbox import PagoEfectivoSandbox, SandboxService

SERVICE_ID, ACCESS_KEY = "1339", "YTQ3Mjk1YjllYjlkYTA0"
SECRET = "s3cr3t+Key/42-never-shown"
T0 = dt.datetime(2026, 7, 15, 14, 0, 0, tzinfo=dt.timezone.utc)  # 09:00 in Lima

SEED = [
    {"cip": 90000001, "transactionCode": "A1", "amount": Decimal("100.50"), "currency": "PEN", "status": 23,
     "statusName": "Pagada", "dateCreation": "2026-07-14T10:00:00-05:00", "dateExpiry": "2026-07-20T10:00:00-05:00",
     "datePayment": "2026-07-14T20:15:00-05:00"},
    {"cip": "90000002", "transactionCode": "A2", "amount": "20.00", "currency": "PEN", "status": 22,
     "statusName": "Pendiente", "dateCreation": "2026-07-14T11:00:00-05:00", "dateExpiry": "2026-07-20T11:00:00-05:00",
     "datePayment": None},
    # Created the day before, outside a search of 2026-07-14 only.
    {"cip": "90000003", "transactionCode": "A3", "amount": Decimal("7"), "currency": "USD", "status": 21,
     "dateCreation": "2026-07-13T09:00:00-05:00", "datePayment": None},
]


class FakeClock:
    """One clock shared by client and sandbox: expiry is tested without sleeping."""

    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest.fixture
def sandbox(clock):
    service = SandboxService(SERVICE_ID, ACCESS_KEY, SECRET, cips=[dict(c) for c in SEED])
    with PagoEfectivoSandbox([service], token_seconds=600, clock=clock) as running:
        yield running


@pytest.fixture
def sleeps():
    return []


def make_client(url, clock, sleeps, *, secret=SECRET, read_timeout=2.0, **options):
    creds = Credentials(store_id="shop", access_key=ACCESS_KEY, service_id=SERVICE_ID, api_url=url, secret_key=secret)
    return PagoEfectivoClient(creds, timeout=(1.0, read_timeout), backoff_seconds=0.01, clock=clock, sleep=sleeps.append, **options)


@pytest.fixture
def client(sandbox, clock, sleeps):
    return make_client(sandbox.url, clock, sleeps)


def bearer(request):
    return request.headers["authorization"]


JULY_14 = dt.date(2026, 7, 14)


# --- the token -------------------------------------------------------------------------------


def test_hash_string_and_date_request_exact_values():
    # Expected value computed outside Python: printf '%s' '1339.YTQ3Mjk.s3cr3t+Key/42.2026-07-14T10:05:00-05:00' | sha256sum
    assert hash_string("1339", "YTQ3Mjk", "s3cr3t+Key/42", "2026-07-14T10:05:00-05:00") == (
        "82b851c860be787153e08e51dceb0fc90bafc760d9ce653774696eb3a3f7c91d"
    )
    assert date_request(dt.datetime(2026, 7, 14, 15, 5, 0, 987_000, tzinfo=dt.timezone.utc)) == "2026-07-14T10:05:00-05:00"


def test_token_request_carries_the_hash_not_the_secret(client, sandbox):
    client.token()
    (call,) = sandbox.calls(AUTHORIZATIONS_PATH)
    expected_hash = hashlib.sha256(f"{SERVICE_ID}.{ACCESS_KEY}.{SECRET}.2026-07-15T09:00:00-05:00".encode()).hexdigest()
    assert call.json() == {"accessKey": ACCESS_KEY, "idService": 1339, "dateRequest": "2026-07-15T09:00:00-05:00",
                           "hashString": expected_hash}
    assert SECRET.encode() not in call.body


def test_token_is_reused_until_shortly_before_expiry_then_refreshed(client, sandbox, clock):
    for _ in range(3):
        client.search_cips(JULY_14, JULY_14)
    clock.advance(530)  # token lives 600 s; 70 s left is outside the 60 s margin: still reused
    client.search_cips(JULY_14, JULY_14)
    assert len(sandbox.calls(AUTHORIZATIONS_PATH)) == 1
    first_token = {bearer(c) for c in sandbox.calls(CIPS_SEARCH_PATH)}
    assert len(first_token) == 1

    clock.advance(20)  # 50 s left: inside the margin, a new token before the call
    client.search_cips(JULY_14, JULY_14)
    assert len(sandbox.calls(AUTHORIZATIONS_PATH)) == 2
    searches = sandbox.calls(CIPS_SEARCH_PATH)
    assert len(searches) == 5 and bearer(searches[-1]) not in first_token


def test_a_401_gets_one_new_token_and_one_more_try(client, sandbox):
    client.search_cips(JULY_14, JULY_14)
    sandbox.revoke_tokens()  # PagoEfectivo dropped the token before its announced expiry
    reply = client.search_cips(JULY_14, JULY_14)
    assert [c["cip"] for c in reply["data"]] == [90000001, "90000002"]
    assert len(sandbox.calls(AUTHORIZATIONS_PATH)) == 2
    assert [s.path for s in sandbox.requests] == [AUTHORIZATIONS_PATH, CIPS_SEARCH_PATH, CIPS_SEARCH_PATH,
                                                   AUTHORIZATIONS_PATH, CIPS_SEARCH_PATH]

    sandbox.fail_next(5, status=401, path=CIPS_SEARCH_PATH)
    with pytest.raises(PagoEfectivoError, match=r"POST /v1/cips/search failed: HTTP 401"):
        client.search_cips(JULY_14, JULY_14)
    assert len(sandbox.calls(CIPS_SEARCH_PATH)) == 5  # one 401, one retry with a new token: no more
    assert len(sandbox.calls(AUTHORIZATIONS_PATH)) == 3


def test_a_wrong_secret_is_refused_once_without_retry(sandbox, clock, sleeps):
    client = make_client(sandbox.url, clock, sleeps, secret="not-the-secret")
    with pytest.raises(PagoEfectivoError) as caught:
        client.search_cips(JULY_14, JULY_14)
    message = str(caught.value)
    assert "store 'shop': PagoEfectivo refused the authorization (HTTP 401, code 111: 'hashString does not match')" in message
    assert "not-the-secret" not in message
    assert len(sandbox.requests) == 1 and sleeps == []


# --- retries ---------------------------------------------------------------------------------


def test_5xx_is_retried_with_exponential_backoff_then_succeeds(client, sandbox, sleeps):
    sandbox.fail_next(3, status=500, path=CIPS_SEARCH_PATH)
    reply = client.search_cips(JULY_14, JULY_14)
    assert len(reply["data"]) == 2
    assert len(sandbox.calls(CIPS_SEARCH_PATH)) == 4
    assert sleeps == [0.01, 0.02, 0.04]


def test_retries_are_bounded(client, sandbox, sleeps):
    sandbox.fail_next(10, status=503, path=AUTHORIZATIONS_PATH)
    with pytest.raises(PagoEfectivoError, match=r"POST http://127\.0\.0\.1:\d+/v1/authorizations failed after 4 attempts: HTTP 503"):
        client.token()
    assert len(sandbox.calls(AUTHORIZATIONS_PATH)) == 4
    assert sleeps == [0.01, 0.02, 0.04]


def test_a_400_is_never_retried(client, sandbox, sleeps):
    client.token()
    sandbox.fail_next(3, status=400, path=CIPS_SEARCH_PATH)
    with pytest.raises(PagoEfectivoError, match=r"POST /v1/cips/search failed: HTTP 400, code 400"):
        client.search_cips(JULY_14, JULY_14)
    assert len(sandbox.calls(CIPS_SEARCH_PATH)) == 1 and sleeps == []


def test_a_timeout_is_retried(sandbox, clock, sleeps):
    client = make_client(sandbox.url, clock, sleeps, read_timeout=0.3)
    client.token()
    sandbox.slow_next(1, 1.0, path=CIPS_SEARCH_PATH)
    reply = client.search_cips(JULY_14, JULY_14)
    assert len(reply["data"]) == 2
    assert len(sandbox.calls(CIPS_SEARCH_PATH)) == 2 and sleeps == [0.01]


def test_connection_errors_are_retried_then_reported(clock, sleeps):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}", clock, sleeps)
    with pytest.raises(PagoEfectivoError, match=r"failed after 4 attempts: connection failed \(ConnectionError\)"):
        client.token()
    assert sleeps == [0.01, 0.02, 0.04]


# --- search ----------------------------------------------------------------------------------


def test_search_sends_the_lima_day_range_and_follows_pages(clock, sleeps):
    many = [{"cip": str(80000000 + i), "transactionCode": f"P{i}", "amount": "1.00", "currency": "PEN", "status": 22,
             "dateCreation": f"2026-07-14T1{i}:00:00-05:00"} for i in range(5)]
    service = SandboxService(SERVICE_ID, ACCESS_KEY, SECRET, cips=many)
    with PagoEfectivoSandbox([service], page_size=2, clock=clock) as sandbox:
        reply = make_client(sandbox.url, clock, sleeps, page_size=2).search_cips(JULY_14, dt.date(2026, 7, 15))
        bodies = [c.json() for c in sandbox.calls(CIPS_SEARCH_PATH)]
    assert [c["cip"] for c in reply["data"]] == ["80000000", "80000001", "80000002", "80000003", "80000004"]
    assert bodies == [
        {"startDate": "2026-07-14T00:00:00-05:00", "endDate": "2026-07-15T23:59:59-05:00", "page": page, "pageSize": 2}
        for page in (1, 2, 3)
    ]


# --- pulling into landing/ -------------------------------------------------------------------


def test_pull_writes_the_reply_wrapper_and_the_same_content_keeps_its_name(home, client, sandbox):
    settings = load_settings(home.path)
    first = pull_cips(settings, "shop", JULY_14, JULY_14, client=client)
    content = first.path.read_bytes()
    sha8 = hashlib.sha256(content).hexdigest()[:8]
    assert first.path == home.path / "landing" / "statements" / "shop" / f"pe_api_2026-07-14_2026-07-14_{sha8}.json"
    assert (first.cips, first.written) == (2, True)
    doc = json.loads(content)
    assert (doc["code"], doc["message"]) == (100, "Solicitud exitosa")
    assert [c["cip"] for c in doc["data"]] == [90000001, "90000002"]
    assert b'"amount": 100.50' in content  # written exactly as PagoEfectivo sent it, not 100.5

    again = pull_cips(settings, "shop", JULY_14, JULY_14, client=client)
    assert (again.path, again.written) == (first.path, False)
    assert sorted(p.name for p in first.path.parent.iterdir()) == [first.path.name]  # no temp file left

    sandbox.services[SERVICE_ID].cips[1].update(status=23, datePayment="2026-07-14T22:00:00-05:00")
    changed = pull_cips(settings, "shop", JULY_14, JULY_14, client=client)
    assert changed.written and changed.path != first.path
    assert len(list(first.path.parent.glob("pe_api_*.json"))) == 2


def test_a_pulled_file_ingests_into_payments(home, client):
    home.orders(
        """\
        A1,2026-07-14 09:55:00,pending,PEN,100.50,0.00,PagoEfectivo,,,
        A2,2026-07-14 10:55:00,pending,PEN,20.00,0.00,PagoEfectivo,,,
        """
    )
    settings = load_settings(home.path)
    pull_cips(settings, "shop", JULY_14, JULY_14, client=client)
    home.run("2026-07-14", "2026-07-14", stores=["shop"])
    payments = home.query(
        "SELECT cip, transaction_code, status, currency, amount_cents, CAST(payment_date AS VARCHAR) AS payment_date"
        " FROM payments WHERE store_id = 'shop' ORDER BY cip"
    )
    assert payments == [
        {"cip": "90000001", "transaction_code": "A1", "status": "paid", "currency": "PEN", "amount_cents": 10050,
         "payment_date": "2026-07-14"},
        {"cip": "90000002", "transaction_code": "A2", "status": "pending", "currency": "PEN", "amount_cents": 2000,
         "payment_date": None},
    ]
    assert [(i["order_id"], i["status"]) for i in home.items()] == [("A1", "MATCHED"), ("A2", "AWAITING_PAYMENT")]

    # Pulling the same CIPs again lands nothing new: the next run has nothing to ingest.
    assert not pull_cips(settings, "shop", JULY_14, JULY_14, client=client).written
    home.run("2026-07-14", "2026-07-14", stores=["shop"])
    assert home.query("SELECT count(*) AS n FROM ingested_files WHERE source = 'statements'") == [{"n": 1}]


# --- credentials and secrecy -----------------------------------------------------------------


def test_credentials_come_from_the_store_variables_then_the_shared_ones():
    environ = {"PAGORECON_PE_ACCESS_KEY": "shared-access", "PAGORECON_PE_SHOP_ACCESS_KEY": "shop-access",
               "PAGORECON_PE_SHOP_SECRET_KEY": "shop-secret", "PAGORECON_PE_SHOP_SERVICE_ID": "77",
               "PAGORECON_PE_SECRET_KEY": "shared-secret", "PAGORECON_PE_SERVICE_ID": "88",
               "PAGORECON_PE_API_URL": "https://pe.example/"}
    shop = credentials_for("shop", environ)
    assert (shop.access_key, shop.secret_key, shop.service_id, shop.api_url) == ("shop-access", "shop-secret", "77", "https://pe.example")
    assert "shop-secret" not in repr(shop)
    # The secret key and service id never fall back to shared variables (they bind a store).
    with pytest.raises(MissingCredentials, match="PAGORECON_PE_SHOPI_SECRET_KEY; PAGORECON_PE_SHOPI_SERVICE_ID$"):
        credentials_for("shopi", environ)
    with pytest.raises(MissingCredentials) as caught:
        credentials_for("shop", {"PAGORECON_PE_SHOP_SECRET_KEY": "x"})
    assert str(caught.value) == (
        "store 'shop': PagoEfectivo credentials not set: PAGORECON_PE_SHOP_ACCESS_KEY or PAGORECON_PE_ACCESS_KEY; "
        "PAGORECON_PE_SHOP_SERVICE_ID; PAGORECON_PE_SHOP_API_URL or PAGORECON_PE_API_URL"
    )


def test_the_secret_appears_in_no_log_exception_or_file(home, sandbox, clock, sleeps, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 included
    client = make_client(sandbox.url, clock, sleeps)
    sandbox.fail_next(2, status=502)
    pull_cips(load_settings(home.path), "shop", JULY_14, JULY_14, client=client)
    sandbox.revoke_tokens()
    clock.advance(3600)
    pull_cips(load_settings(home.path), "shop", JULY_14, JULY_14, client=client)
    errors = []
    for secret in (SECRET, "wrong-" + SECRET):
        try:
            make_client(sandbox.url, clock, sleeps, secret=secret + "x").token()
        except PagoEfectivoError as exc:
            errors.append(f"{exc!r} {exc}")
    assert len(errors) == 2
    assert "attempt 1/4: HTTP 502; retrying" in caplog.text  # the logs were captured
    assert SECRET not in caplog.text
    assert not any(SECRET in e for e in errors)
    assert SECRET not in repr(client) and SECRET not in repr(client.credentials)
    files = [p for p in home.path.rglob("*") if p.is_file()]
    assert files and not any(SECRET.encode() in p.read_bytes() for p in files)


def test_cli_pull_reads_credentials_from_the_environment(home, monkeypatch, capsys):
    service = SandboxService(SERVICE_ID, ACCESS_KEY, SECRET, cips=[dict(c) for c in SEED])
    for name in ("ACCESS_KEY", "SECRET_KEY", "SERVICE_ID"):
        monkeypatch.delenv(f"PAGORECON_PE_{name}", raising=False)
    with PagoEfectivoSandbox([service]) as sandbox:  # the real clock, like the CLI
        monkeypatch.setenv("PAGORECON_PE_API_URL", sandbox.url)
        monkeypatch.setenv("PAGORECON_PE_SHOP_ACCESS_KEY", ACCESS_KEY)
        monkeypatch.setenv("PAGORECON_PE_SHOP_SECRET_KEY", SECRET)
        monkeypatch.setenv("PAGORECON_PE_SHOP_SERVICE_ID", SERVICE_ID)
        code = main(["--home", str(home.path), "pagoefectivo", "pull", "--start", "2026-07-13", "--end", "2026-07-14",
                     "--store", "shop"])
        out, err = capsys.readouterr()
        assert code == 0, err
        (pulled,) = (home.path / "landing" / "statements" / "shop").glob("pe_api_2026-07-13_2026-07-14_*.json")
        assert out.splitlines()[0] == f"shop: 3 CIP(s) -> landing/statements/shop/{pulled.name} (new)"
        # shopi has no credentials of its own and there are no shared ones: named, exit 2.
        code = main(["--home", str(home.path), "pagoefectivo", "pull", "--start", "2026-07-14", "--end", "2026-07-14"])
        out, err = capsys.readouterr()
    assert code == 2
    assert "store 'shopi': PagoEfectivo credentials not set: PAGORECON_PE_SHOPI_ACCESS_KEY or PAGORECON_PE_ACCESS_KEY" in err
    assert out.startswith("shop: 2 CIP(s) -> landing/statements/shop/pe_api_2026-07-14_2026-07-14_")
    assert SECRET not in out + err
