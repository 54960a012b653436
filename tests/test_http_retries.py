"""The API clients' one retry loop: timeouts, failed connections and 5xx are sent again with a
doubling backoff, a 429 only when asked (waiting at least its Retry-After), at most `attempts`
times; any other answer is returned at once."""

import inspect

import pytest
import requests

from pagorecon_dagster.core.http import RetriesExhausted, send_with_retries
from pagorecon_dagster.pagoefectivo.client import PagoEfectivoClient
from pagorecon_dagster.rates.bcrp import BcrpClient
from pagorecon_dagster.stores.shopify import ShopifyClient
from pagorecon_dagster.stores.woocommerce import WooCommerceClient


def answered(status, retry_after=None):
    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response


def sender(*outcomes):
    """Each call answers the next outcome: a status, a (status, Retry-After) or an exception to raise."""
    queue = list(outcomes)

    def send():
        outcome = queue.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return answered(*outcome) if isinstance(outcome, tuple) else answered(outcome)
    send.left = queue
    return send


def call(send, sleeps, **options):
    return send_with_retries(send, **{"attempts": 4, "backoff_seconds": 0.5, "sleep": sleeps.append,
                                      "timeout_seconds": 30.0, "what": "test", **options})


def test_timeouts_connection_errors_and_5xx_are_retried_with_a_doubling_backoff():
    sleeps = []
    send = sender(requests.Timeout(), requests.ConnectionError(), 503, 200)
    assert call(send, sleeps).status_code == 200
    assert sleeps == [0.5, 1.0, 2.0] and send.left == []


@pytest.mark.parametrize("status", [200, 302, 400, 401, 404, 429])
def test_any_other_answer_is_returned_at_once(status):
    sleeps = []
    assert call(sender(status), sleeps).status_code == status and sleeps == []


def test_a_429_is_retried_when_asked_waiting_at_least_its_retry_after():
    sleeps = []
    assert call(sender((429, "3"), (429, "x"), 200), sleeps, retry_429=True).status_code == 200
    assert sleeps == [3.0, 1.0]   # the backoff when Retry-After is not a number of seconds


def test_attempts_are_bounded_and_the_last_problem_is_said():
    sleeps = []
    with pytest.raises(RetriesExhausted, match=r"^failed after 3 attempts: no answer within 30s$") as raised:
        call(sender(500, requests.ConnectionError(), requests.Timeout()), sleeps, attempts=3)
    assert sleeps == [0.5, 1.0] and raised.value.problem == "no answer within 30s"
    with pytest.raises(RetriesExhausted, match=r"connection failed \(ConnectionError\)"):
        call(sender(requests.ConnectionError()), [], attempts=1)


def test_other_request_errors_are_raised_unless_the_caller_retries_them():
    with pytest.raises(requests.TooManyRedirects):
        call(sender(requests.TooManyRedirects()), [])
    sleeps = []
    with pytest.raises(RetriesExhausted, match=r"failed after 2 attempts: TooManyRedirects: loop"):
        call(sender(requests.TooManyRedirects("loop"), requests.TooManyRedirects("loop")), sleeps, attempts=2,
             retry_on=(requests.RequestException,))
    assert sleeps == [0.5]


@pytest.mark.parametrize("client", [ShopifyClient, WooCommerceClient, PagoEfectivoClient, BcrpClient])
def test_every_api_client_retries_through_the_one_loop(client):
    source = inspect.getsource(client)
    assert "send_with_retries(" in source and "for attempt in" not in source
