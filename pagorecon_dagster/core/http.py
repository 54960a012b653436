"""The one retry loop of the API clients: a call is sent again after a timeout, a failed connection
or a 5xx (and a 429, waiting at least its `Retry-After`, when the caller asks), with a doubling
backoff, at most `attempts` times. Any other answer is the caller's to judge."""

from __future__ import annotations

import logging
from collections.abc import Callable

import requests

log = logging.getLogger(__name__)


class RetriesExhausted(Exception):
    """Every attempt timed out, failed to connect or was answered with a status worth retrying."""

    def __init__(self, attempts: int, problem: str):
        super().__init__(f"failed after {attempts} attempts: {problem}")
        self.attempts = attempts
        self.problem = problem   # what went wrong with the last attempt, e.g. "HTTP 503"


def send_with_retries(
    send: Callable[[], requests.Response],
    *,
    attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None],
    timeout_seconds: float,
    what: str,
    retry_429: bool = False,
    retry_on: tuple[type[Exception], ...] = (requests.Timeout, requests.ConnectionError),
    logger: logging.Logger = log,
) -> requests.Response:
    """The first answer that is not worth retrying; waits `backoff_seconds * 2**(n-1)` after the
    n-th failed attempt and logs it under `what` (e.g. "store lima: POST /v1/cips/search")."""
    problem = ""
    for attempt in range(1, attempts + 1):
        wait = backoff_seconds * 2 ** (attempt - 1)
        try:
            response = send()
        except retry_on as exc:
            problem = _problem(exc, timeout_seconds)
        else:
            status = response.status_code
            if status < 500 and not (retry_429 and status == 429):
                return response
            problem = f"HTTP {status}"
            retry_after = response.headers.get("Retry-After", "").strip()
            if status == 429 and retry_after.isdigit():
                wait = max(wait, float(retry_after))
        if attempt < attempts:
            logger.warning("%s attempt %d/%d: %s; retrying in %.2fs", what, attempt, attempts, problem, wait)
            sleep(wait)
    raise RetriesExhausted(attempts, problem)


def _problem(exc: Exception, timeout_seconds: float) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout_seconds:g}s"
    if isinstance(exc, requests.ConnectionError):
        return f"connection failed ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"
