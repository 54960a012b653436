"""`AlertChannel`: where alerts go besides the log, a Slack-compatible webhook (`POST {"text": ...}`).
Its URL comes from `$PAGORECON_ALERT_WEBHOOK_URL` through `dg.EnvVar` (the UI shows the variable's
name, never its value); without it the log is the delivery. The URL is a secret: no log line and
no error message carries it."""

from __future__ import annotations

import dagster as dg
import requests

WEBHOOK_ENV = "PAGORECON_ALERT_WEBHOOK_URL"
TIMEOUT_SECONDS = 10


class DeliveryFailed(Exception):
    """The webhook did not take the alert; the message says why, without the URL."""


class AlertChannel(dg.ConfigurableResource):
    """A webhook for alerts (empty: none, the log alone delivers them)."""

    webhook_url: str = ""

    @property
    def has_webhook(self) -> bool:
        return bool(self.webhook_url.strip())

    def send(self, text: str) -> None:
        """POST `{"text": text}` once; retrying is the delivery job's RetryPolicy."""
        if not self.has_webhook:
            return
        try:
            reply = requests.post(self.webhook_url.strip(), json={"text": text}, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            # str(exc) names the URL, which is a secret: keep only the kind of failure, and no cause chain.
            raise DeliveryFailed(f"webhook: {type(exc).__name__}") from None
        if not 200 <= reply.status_code < 300:
            raise DeliveryFailed(f"webhook: HTTP {reply.status_code} {reply.text[:200].strip()}".strip())

