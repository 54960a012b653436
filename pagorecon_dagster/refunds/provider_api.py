"""The `api` executor's client: an aggregator-style REST refund provider, called with `requests`.

The idempotency key is the refund id, so the provider pays a refund once however often it is
sent. Timeouts and 5xx are retried with backoff; anything else is an answer. After a timeout,
a dropped connection or a 5xx the outcome is unknown (the provider may have paid), so before
anything is sent again the provider is asked for the refund's status."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from pagorecon_dagster.config import ConfigError
from pagorecon_dagster.core.masking import mask_text
from pagorecon_dagster.core.money import MoneyError, format_cents, parse_cents

URL_ENV = "PAGORECON_REFUND_API_URL"
KEY_ENV = "PAGORECON_REFUND_API_KEY"
TIMEOUT_ENV = "PAGORECON_REFUND_API_TIMEOUT_SECONDS"

PAID, FAILED, PROCESSING, UNKNOWN = "paid", "failed", "processing", "unknown"


@dataclass(frozen=True)
class ApiSettings:
    url: str
    key: str
    timeout_seconds: float = 10.0
    max_attempts: int = 4
    backoff_seconds: float = 0.5

    def __repr__(self) -> str:  # the key never reaches a log
        return f"ApiSettings(url={self.url!r}, timeout_seconds={self.timeout_seconds}, max_attempts={self.max_attempts})"


def api_settings_from_env(**overrides: Any) -> ApiSettings:
    url = os.environ.get(URL_ENV, "").strip().rstrip("/")
    key = os.environ.get(KEY_ENV, "").strip()
    if not url:
        raise ConfigError(f"the api refund executor needs the provider's base URL in ${URL_ENV}")
    if not key:
        raise ConfigError(f"the api refund executor needs the provider's API key in ${KEY_ENV}")
    timeout = os.environ.get(TIMEOUT_ENV, "").strip()
    if timeout and "timeout_seconds" not in overrides:
        try:
            overrides["timeout_seconds"] = float(timeout)
        except ValueError:
            raise ConfigError(f"${TIMEOUT_ENV} must be a number of seconds, got {timeout!r}") from None
    return ApiSettings(url=url, key=key, **overrides)


@dataclass(frozen=True)
class Outcome:
    status: str                       # paid | failed | processing | unknown
    reference: str | None = None      # the provider's id for the payout
    detail: str | None = None
    completed_at: dt.datetime | None = None


class ProviderUnreachable(Exception):
    """No answer (timeout, connection, 5xx): the refund's state at the provider is unknown."""


class ProviderError(Exception):
    """An answer that needs a person: credentials refused, an idempotency key reused for other
    content, or a provider record that does not match the refund."""


class RefundApiClient:
    def __init__(self, settings: ApiSettings, *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.session = session or requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {settings.key}", "Accept": "application/json"})
        self.sleep = sleep

    @property
    def _timeout(self) -> tuple[float, float]:
        return (min(3.05, self.settings.timeout_seconds), self.settings.timeout_seconds)

    def submit(self, refund: dict[str, Any]) -> Outcome:
        """Send the refund until the provider answers; GET its status first whenever a previous
        attempt's outcome is unknown. Returns `unknown` when no attempt got an answer."""
        refund_id = refund["refund_id"]
        outcome_unknown, problem = False, ""
        for attempt in range(self.settings.max_attempts):
            if attempt:
                self.sleep(self.settings.backoff_seconds * 2 ** (attempt - 1))
            if outcome_unknown:
                try:
                    known = self.status(refund)
                except ProviderUnreachable as exc:
                    problem = str(exc)
                    continue
                if known is not None:
                    return known
                outcome_unknown = False  # the provider has no such refund: sending it is safe
            try:
                response = self.session.post(
                    f"{self.settings.url}/refunds", json=payload(refund), timeout=self._timeout,
                    headers={"Idempotency-Key": refund_id},
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                outcome_unknown, problem = True, f"POST /refunds: no answer ({type(exc).__name__})"
                continue
            if response.status_code >= 500:
                outcome_unknown, problem = True, f"POST /refunds: HTTP {response.status_code}"
                continue
            return self._answer(refund, response, "POST /refunds")
        return Outcome(UNKNOWN, detail=f"no answer after {self.settings.max_attempts} attempts; last: {problem}")

    def status(self, refund: dict[str, Any]) -> Outcome | None:
        """The provider's record of this refund, or None when it has none."""
        where = f"GET /refunds/{refund['refund_id']}"
        try:
            response = self.session.get(
                f"{self.settings.url}/refunds/{quote(refund['refund_id'], safe='')}", timeout=self._timeout
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise ProviderUnreachable(f"{where}: no answer ({type(exc).__name__})") from None
        if response.status_code == 404:
            return None
        if response.status_code >= 500:
            raise ProviderUnreachable(f"{where}: HTTP {response.status_code}")
        return self._answer(refund, response, where)

    def _answer(self, refund: dict[str, Any], response: requests.Response, where: str) -> Outcome:
        code = response.status_code
        message = mask_text(_message(response))
        if code in (401, 403):
            raise ProviderError(f"{where}: the provider refused the credentials (HTTP {code}); check ${KEY_ENV}")
        if code == 409:
            raise ProviderError(f"{where}: HTTP 409 {message}")
        if 400 <= code < 500:
            return Outcome(FAILED, detail=f"the provider refused the refund: HTTP {code} {message}".strip())
        if code not in (200, 201):
            raise ProviderError(f"{where}: unexpected HTTP {code} {message}".strip())
        try:
            record = response.json()
            paid_cents = parse_cents(str(record["amount"]))
            status, reference = str(record["status"]), str(record["id"])
        except (ValueError, KeyError, TypeError, MoneyError) as exc:
            raise ProviderError(f"{where}: the provider's answer is not a refund record ({exc})") from None
        if (paid_cents, record.get("currency")) != (refund["amount_cents"], refund["currency"]):
            raise ProviderError(
                f"{where}: the provider's record {reference} is for {record.get('currency')} {record['amount']}, "
                f"not {format_cents(refund['amount_cents'], refund['currency'])}"
            )
        if status == PAID:
            return Outcome(PAID, reference, completed_at=_instant(record.get("completed_at")))
        if status == FAILED:
            return Outcome(FAILED, reference, detail=mask_text(str(record.get("failure_reason") or "the provider could not pay it")))
        return Outcome(PROCESSING, reference, detail=f"the provider reports {status!r}")


def payload(refund: dict[str, Any]) -> dict[str, Any]:
    """The refund as the provider receives it: money as a decimal string, to the payer."""
    return {
        "refund_id": refund["refund_id"],
        "store_id": refund["store_id"],
        "order_id": refund["order_id"],
        "cip": refund["cip"],
        "amount": format_cents(refund["amount_cents"]),
        "currency": refund["currency"],
        "reason": refund["reason"],
        "beneficiary": {"document_number": refund["beneficiary_document"], "account": refund["beneficiary_account"]},
    }


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
        return str(body.get("message") or body.get("error") or "")
    except ValueError:
        return response.text[:200]


def _instant(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
