"""`Mailer`: how report emails leave, as a Dagster resource. By SMTP, always upgraded with
STARTTLS and the server's certificate verified (against `email.server.ca_file` when set, else the
system's CAs; there is no switch to skip verification); or, for a trial, as .eml files in
`$PAGORECON_HOME/mailbox/`. The account comes from `$PAGORECON_SMTP_USERNAME` and
`$PAGORECON_SMTP_PASSWORD` through `dg.EnvVar` (the UI shows the names, never the values), and no
log line or error message carries them."""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
import time
from email.message import EmailMessage
from pathlib import Path

import dagster as dg
from pydantic import Field

from pagorecon_dagster.config import Settings
from pagorecon_dagster.resources import _env_var, value

USERNAME_ENV, PASSWORD_ENV = "PAGORECON_SMTP_USERNAME", "PAGORECON_SMTP_PASSWORD"
TIMEOUT_SECONDS = 30


class SendFailed(Exception):
    """The message was not accepted; the text says why, without the account."""


class Mailer(dg.ConfigurableResource):
    delivery: str = Field(default="smtp", description="smtp | file (`email.delivery`)")
    host: str = Field(default="", description="SMTP server (`email.server.host`)")
    port: int = Field(default=587, description="SMTP submission port, upgraded with STARTTLS (`email.server.port`)")
    ca_file: str = Field(default="", description="PEM of the CA the server's certificate is checked against; empty: the system's")
    mailbox: str = Field(default="", description="folder of the .eml files of `delivery: file`")
    username: str = Field(default="", repr=False, description=f"SMTP account (${USERNAME_ENV}); secret")
    password: str = Field(default="", repr=False, description=f"SMTP password (${PASSWORD_ENV}); secret")

    def send(self, message: EmailMessage) -> None:
        """Hand the message over once; retrying is the step's RetryPolicy."""
        if self.delivery == "file":
            self._write(message)
            return
        user, password = value(self.username), value(self.password)
        try:
            context = ssl.create_default_context(cafile=self.ca_file or None)
            with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS) as smtp:
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise SendFailed(f"{self.host}:{self.port} does not offer STARTTLS; pagorecon never sends in clear text")
                smtp.starttls(context=context)
                smtp.ehlo()
                if user:
                    smtp.login(user, password)
                smtp.send_message(message)
        except SendFailed:
            raise
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            raise SendFailed(self._scrub(f"{self.host}:{self.port}: {type(exc).__name__}: {exc}", user, password)) from None

    def _write(self, message: EmailMessage) -> None:
        folder = Path(self.mailbox)
        folder.mkdir(parents=True, exist_ok=True)
        data = bytes(message)
        name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{hashlib.sha256(data).hexdigest()[:12]}.eml"
        partial = folder / f".{name}.partial"
        partial.write_bytes(data)
        os.replace(partial, folder / name)

    @staticmethod
    def _scrub(text: str, *secrets: str) -> str:
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def mailer(settings: Settings) -> Mailer:
    """The deployment's mailer: `email:` of pagorecon.yaml, the account from the environment."""
    email = settings.email
    return Mailer(delivery=email.delivery, host=email.server.host, port=email.server.port, ca_file=email.server.ca_file,
                  mailbox=str(settings.mailbox), username=_env_var(USERNAME_ENV), password=_env_var(PASSWORD_ENV))
