"""The `api` executor's client: an aggregator-style REST refund provider, called with `requests`.

The idempotency key is the refund id, so the provider pays a refund once however often it is
sent. Its status is asked before the first POST too: a warehouse restored from an older backup
may not know that the provider already has it. Timeouts and 5xx are retried with backoff; 408,
425 and 429 are "retry later", retried after the provider's `Retry-After` (seconds or an
HTTP-date, up to `max_retry_after_seconds`); anything else is an answer. After a timeout, a
dropped connection or a 5xx the outcome is unknown (the provider may have paid), so before
anything is sent again, and before a refusal is believed, the provider is asked for the
refund's status."""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from pagorecon_dagster.config import ConfigError
from pagorecon_dagster.core.masking import mask_text
from pagorecon_dagster.core.money import MoneyError, format_cents, parse_cents

# The variables the `RefundProvider` resource is configured from (named in errors).
URL_ENV = "PAGORECON_REFUND_API_URL"
KEY_ENV = "PAGORECON_REFUND_API_KEY"
TIMEOUT_ENV = "PAGORECON_REFUND_API_TIMEOUT_SECONDS"

PAID, FAILED, PROCESSING, UNKNOWN = "paid", "failed", "processing", "unknown"
# Request Timeout, Too Early, Too Many Requests: nothing was done, ask again after Retry-After.
RETRY_LATER = (408, 425, 429)
CREDENTIALS_REFUSED = (401, 403)


@dataclass(frozen=True)
class ApiSettings:
    url: str
    key: str
    timeout_seconds: float = 10.0
    max_attempts: int = 4
    backoff_seconds: float = 0.5
    max_retry_after_seconds: float = 60.0   # a longer Retry-After ends the pass instead of blocking it

    def __repr__(self) -> str:  # the key never reaches a log
        return f"ApiSettings(url={self.url!r}, timeout_seconds={self.timeout_seconds}, max_attempts={self.max_attempts})"


def api_settings(url: str, key: str, timeout_seconds: str = "", **overrides: Any) -> ApiSettings:
    """The client's settings from the `RefundProvider` resource's values; an error names the
    variable to set."""
    url, key, timeout_seconds = (url or "").strip().rstrip("/"), (key or "").strip(), (timeout_seconds or "").strip()
    if not url:
        raise ConfigError(f"the api refund executor needs the provider's base URL in ${URL_ENV}")
    if not key:
        raise ConfigError(f"the api refund executor needs the provider's API key in ${KEY_ENV}")
    if timeout_seconds and "timeout_seconds" not in overrides:
        try:
            overrides["timeout_seconds"] = float(timeout_seconds)
        except ValueError:
            raise ConfigError(f"${TIMEOUT_ENV} must be a number of seconds, got {timeout_seconds!r}") from None
    return ApiSettings(url=url, key=key, **overrides)


@dataclass(frozen=True)
class Outcome:
    status: str                       # paid | failed | processing | unknown
    reference: str | None = None      # the provider's id for the payout
    detail: str | None = None
    completed_at: dt.datetime | None = None


class ProviderUnreachable(Exception):
    """No answer (timeout, connection, 5xx): the refund's state at the provider is unknown."""


class RetryLater(ProviderUnreachable):
    """408, 425 or 429: the provider did nothing and asks to be called again after `seconds`."""

    def __init__(self, message: str, seconds: float | None):
        super().__init__(message)
        self.seconds = seconds


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

    def submit(self, refund: dict[str, Any], *, asked: bool = False) -> Outcome:
        """Ask for the refund's status (unless the caller just `asked` and got none), then send it
        until the provider answers; ask again whenever an attempt's outcome is unknown. Returns
        `unknown` when no attempt got a usable answer."""
        ask_first, unanswered, problem = not asked, False, ""
        wait: float | None = None
        for attempt in range(self.settings.max_attempts):
            if attempt:
                self.sleep(wait if wait is not None else self.settings.backoff_seconds * 2 ** (attempt - 1))
            wait = None
            try:
                if ask_first:
                    known = self.status(refund)
                    if known is not None:
                        return known
                    ask_first = False  # the provider has no such refund: sending it is safe
                response = self._call("POST", f"{self.settings.url}/refunds", "POST /refunds",
                                      json=payload(refund), headers={"Idempotency-Key": refund["refund_id"]})
            except RetryLater as exc:
                problem = str(exc)
                if exc.seconds is not None and exc.seconds > self.settings.max_retry_after_seconds:
                    return Outcome(UNKNOWN, detail=f"{problem}, more than the {self.settings.max_retry_after_seconds:g} s "
                                                   "a pass waits; asked again on a later run")
                wait = exc.seconds
                continue
            except ProviderUnreachable as exc:
                ask_first, unanswered, problem = True, True, str(exc)
                continue
            if unanswered and 400 <= response.status_code < 500 and response.status_code not in CREDENTIALS_REFUSED:
                return self._settle_refusal(refund, response)
            return self._answer(refund, response, "POST /refunds")
        return Outcome(UNKNOWN, detail=f"no answer after {self.settings.max_attempts} attempts; last: {problem}")

    def _settle_refusal(self, refund: dict[str, Any], response: requests.Response) -> Outcome:
        """A 4xx after an unanswered attempt may be about a refund the provider already has (still
        in progress, or a duplicate): its status decides, never the refusal."""
        refusal = f"POST /refunds: HTTP {response.status_code} after an unanswered attempt"
        try:
            known = self.status(refund)
        except ProviderUnreachable as exc:
            return Outcome(UNKNOWN, detail=f"{refusal}; status unknown ({exc}); asked again on a later run")
        if known is not None:
            return known
        return Outcome(UNKNOWN, detail=f"{refusal}, and the provider has no record yet; asked again on a later run")

    def status(self, refund: dict[str, Any]) -> Outcome | None:
        """The provider's record of this refund, or None when it has none. Raises
        ProviderUnreachable (RetryLater for 408/425/429) when the provider gives no answer."""
        where = f"GET /refunds/{refund['refund_id']}"
        response = self._call("GET", f"{self.settings.url}/refunds/{quote(refund['refund_id'], safe='')}", where)
        if response.status_code == 404:
            return None
        if 400 <= response.status_code < 500 and response.status_code not in CREDENTIALS_REFUSED:
            # a question cannot refuse a refund: whatever this is, a person looks at it
            raise ProviderError(f"{where}: unexpected HTTP {response.status_code} {mask_text(_message(response))}".strip())
        return self._answer(refund, response, where)

    def _call(self, method: str, url: str, where: str, **kwargs: Any) -> requests.Response:
        """One request; no answer, a 5xx or a "retry later" raise ProviderUnreachable / RetryLater."""
        try:
            response = self.session.request(method, url, timeout=self._timeout, **kwargs)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise ProviderUnreachable(f"{where}: no answer ({type(exc).__name__})") from None
        if response.status_code >= 500:
            raise ProviderUnreachable(f"{where}: HTTP {response.status_code}")
        if response.status_code in RETRY_LATER:
            seconds = retry_after_seconds(response.headers.get("Retry-After"))
            after = f", the provider asks to retry after {seconds:g} s" if seconds is not None else ""
            raise RetryLater(f"{where}: HTTP {response.status_code}{after}", seconds)
        return response

    def _answer(self, refund: dict[str, Any], response: requests.Response, where: str) -> Outcome:
        code = response.status_code
        message = mask_text(_message(response))
        if code in CREDENTIALS_REFUSED:
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


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """`Retry-After` as seconds to wait: delay-seconds or an HTTP-date (RFC 9110); None when absent
    or unreadable (the client's own backoff applies)."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - (now or dt.datetime.now(dt.timezone.utc))).total_seconds())


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
