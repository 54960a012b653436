"""Reports reach finance by email: a real SMTP server on loopback (aiosmtpd) that requires
STARTTLS and a login, with a certificate made here and trusted through `email.server.ca_file`.
What arrived is read back: subject, language, body, attachments. A version is sent once, a
changed report again, every version sent stays in the archive, and a failed send is retried,
raises an alert and never shows the account's password."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import socket
import threading
import ssl
from pathlib import Path

import dagster as dg
import postgres_lake
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value

from pagorecon_dagster.config import ConfigError, load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.delivery import assets as email_assets_module
from pagorecon_dagster.delivery.assets import all_stores_dues
from pagorecon_dagster.delivery.jobs import email_runs
from pagorecon_dagster.delivery.send import send_reports
from pagorecon_dagster.delivery.mailer import mailer
from pagorecon_dagster.delivery.mailer import PASSWORD_ENV, USERNAME_ENV
from pagorecon_dagster.delivery.message import REPORT_HEADER, VERSION_HEADER
from pagorecon_dagster.jobs import following_report_runs
from pagorecon_dagster.reports.all_stores import all_stores_path
from pagorecon_dagster.reports.window import all_stores_reports
from pagorecon_dagster.warehouse.duckdb import connect, home_lake

USER, PASSWORD = "pagorecon-bot", "s3cret-Pa55-word"
FINANCE, TESORERIA, SHOP_ONLY = "finance@example.pe", "tesoreria@example.pe", "shopkeeper@example.pe"
D = dt.date.fromisoformat


# -- a real SMTP server on loopback --------------------------------------------------------------------

def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pagorecon test SMTP")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class Inbox:
    """aiosmtpd handler: keeps what arrived; `refuse` answers DATA with a temporary failure that many times."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.refuse = 0

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            self.refuse -= 1
            return "451 4.3.0 mailbox busy, try again later"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def version(message) -> str:
    """The version header, unfolded (a 64-digit hash is folded onto a line of its own)."""
    return "".join(str(message[VERSION_HEADER]).split())


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(tmp_path):
    cert_file, key_file = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=tls, require_starttls=True,
                            authenticator=authenticate, auth_require_tls=True)
    controller.start()
    try:
        yield inbox, controller.port, cert_file
    finally:
        controller.stop()


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(email_assets_module, "RETRY_POLICY", dg.RetryPolicy(max_retries=2, delay=0.01))


def configure(home, port: int, ca_file: Path, monkeypatch, **email_overrides) -> None:
    monkeypatch.setenv(USERNAME_ENV, USER)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    home.config(email={
        "server": {"host": "127.0.0.1", "port": port, "ca_file": str(ca_file)},
        "from_address": "pagorecon@example.pe",
        "link_base_url": "https://finanzas.example.pe/pagorecon/archive",
        "recipients": [
            {"address": FINANCE, "language": "en", "stores": "all", "files": "attach"},
            {"address": TESORERIA, "language": "es", "stores": "all", "files": "link"},
            {"address": SHOP_ONLY, "language": "es", "stores": ["shop"], "files": "attach"},
        ],
        **email_overrides,
    })


def seed(home, total: str = "10.00") -> None:
    home.orders(f"A1,2026-01-30 10:00:00,pending,PEN,{total},0.00,PagoEfectivo,,,\n")
    home.statements("90000001,A1,,paid,PEN,10.00,,,2026-01-30T10:00:00-05:00,,2026-01-30T11:00:00-05:00,BCP,,,\n")


def run_with_emails(home, instance, start="2026-01-30", end="2026-01-30"):
    """What `pagorecon run` does: reconcile, write the reports, then the email runs. Returns the email runs' results."""
    home.run(start, end, instance=instance)
    definitions = build_definitions(load_settings(home.path))
    runs = following_report_runs(definitions, load_settings(home.path).store_ids, D(start), D(end))
    return [definitions.resolve_job_def(job).execute_in_process(instance=instance, tags=tags, raise_on_error=False)
            for job, tags in email_runs(runs)]


def all_logs(instance) -> str:
    runs = instance.get_runs()
    return "\n".join(str(entry) for run in runs for entry in instance.all_logs(run.run_id))


# -- the scenarios ---------------------------------------------------------------------------------------

def test_each_recipient_gets_the_day_and_the_closed_months_in_their_language_once(home, smtp, monkeypatch):
    inbox, port, ca_file = smtp
    configure(home, port, ca_file, monkeypatch)
    seed(home)
    with dg.DagsterInstance.ephemeral() as instance:
        assert all(r.success for r in run_with_emails(home, instance))

        # finance: the all-stores report of the day and both stores' January close, in English, files attached
        subjects = sorted(m["Subject"] for m in inbox.to(FINANCE))
        assert subjects == ["pagorecon: All stores — 2026-01-30", "pagorecon: Month close: Canonical Shop (shop) — January 2026 (2026-01)",
                            "pagorecon: Month close: Shopify Store (shopi) — January 2026 (2026-01)"]
        day = next(m for m in inbox.to(FINANCE) if m[REPORT_HEADER] == "all_stores/2026-01/all_stores_2026-01-30")
        assert day["Content-Language"] == "en" and day["From"] == "pagorecon@example.pe"
        html = day.get_body(("html",)).get_content()
        assert '<html lang="en">' in html and "All stores — 2026-01-30" in html
        attached = {a.get_filename(): a.get_payload(decode=True) for a in day.iter_attachments()}
        assert sorted(attached) == ["all_stores_2026-01-30.csv", "all_stores_2026-01-30.xlsx"]
        archived = home.path / "archive" / "reports" / "all_stores" / "2026-01"
        [csv_file] = archived.glob("all_stores_2026-01-30.en.*.csv")
        assert attached["all_stores_2026-01-30.csv"] == csv_file.read_bytes()
        assert attached["all_stores_2026-01-30.xlsx"][:2] == b"PK"

        # tesorería: Spanish, the files linked to the archive instead of attached
        spanish = next(m for m in inbox.to(TESORERIA) if m[REPORT_HEADER] == "all_stores/2026-01/all_stores_2026-01-30")
        assert spanish["Subject"] == "pagorecon: Todas las tiendas — 2026-01-30" and spanish["Content-Language"] == "es"
        assert list(spanish.iter_attachments()) == []
        body = spanish.get_body(("html",)).get_content()
        xlsx_file = archived / f"all_stores_2026-01-30.es.{version(spanish)[:16]}.xlsx"
        assert xlsx_file.read_bytes()[:2] == b"PK"
        assert f'href="https://finanzas.example.pe/pagorecon/archive/reports/all_stores/2026-01/{xlsx_file.name}"' in body

        # a recipient of one store: that store's close only, and a day report of that store alone
        assert sorted(m["Subject"] for m in inbox.to(SHOP_ONLY)) == [
            "pagorecon: Cierre de mes: Canonical Shop (shop) — enero 2026 (2026-01)", "pagorecon: Todas las tiendas — 2026-01-30"]
        theirs = next(m for m in inbox.to(SHOP_ONLY) if m[REPORT_HEADER].startswith("all_stores/"))
        assert "Shopify Store" not in theirs.get_body(("html",)).get_content()
        assert version(theirs) != version(spanish)

        rows = home.query("SELECT recipient, status, sha256 FROM report_emails ORDER BY recipient, report")
        assert len(rows) == 8 == len(inbox.messages) and {r["status"] for r in rows} == {"sent"}

        # nothing changed: nothing is sent again
        assert all(r.success for r in run_with_emails(home, instance))
        assert len(inbox.messages) == 8

        # credentials never reach a log or metadata
        assert PASSWORD not in all_logs(instance) and USER not in all_logs(instance)


def test_a_changed_report_is_sent_again_and_both_versions_stay_in_the_archive(home, smtp, monkeypatch):
    inbox, port, ca_file = smtp
    configure(home, port, ca_file, monkeypatch, recipients=[{"address": FINANCE, "language": "en"}])
    seed(home)
    with dg.DagsterInstance.ephemeral() as instance:
        assert all(r.success for r in run_with_emails(home, instance))
        first = {m[REPORT_HEADER]: version(m) for m in inbox.messages}
        # the store restates the order: the reports of that day and month change
        home.orders("A1,2026-01-30 10:00:00,pending,PEN,12.00,0.00,PagoEfectivo,,,\n", name="orders-restated.csv")
        assert all(r.success for r in run_with_emails(home, instance))
    day = "all_stores/2026-01/all_stores_2026-01-30"
    versions = [version(m) for m in inbox.messages if m[REPORT_HEADER] == day]
    assert len(versions) == 2 and versions[0] == first[day] and versions[1] != versions[0]
    # the shopify store's close did not change: sent once
    assert [m[REPORT_HEADER] for m in inbox.messages].count("month_close/2026-01/shopi_2026-01_close") == 1
    archived = sorted((home.path / "archive" / "reports" / "all_stores" / "2026-01").glob("all_stores_2026-01-30.en.*.html"))
    assert len(archived) == 2
    # each archived file is exactly what was sent, named by its version
    for message in (m for m in inbox.messages if m[REPORT_HEADER] == day):
        sent_html = message.get_body(("html",)).get_content().replace("\r\n", "\n")  # SMTP carries lines as CRLF
        [kept] = [p for p in archived if version(message).startswith(p.name.split(".")[2])]
        assert kept.read_text(encoding="utf-8") == sent_html
    rows = home.query("SELECT sha256, archived FROM report_emails WHERE report = ? ORDER BY sent_at", [day])
    assert [r["sha256"] for r in rows] == versions


def test_a_refused_send_is_retried_then_alerted_and_a_later_run_sends_it_once(home, smtp, monkeypatch, quick_retries):
    inbox, port, ca_file = smtp
    configure(home, port, ca_file, monkeypatch, recipients=[{"address": FINANCE, "language": "en"}])
    seed(home)
    with dg.DagsterInstance.ephemeral() as instance:
        inbox.refuse = 1   # the first attempt is refused, the retry goes through
        results = run_with_emails(home, instance)
        assert all(r.success for r in results)
        retried = [e for r in results for e in r.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
        assert len(retried) == 1
        day = "all_stores/2026-01/all_stores_2026-01-30"
        assert [m[REPORT_HEADER] for m in inbox.messages].count(day) == 1

    home.orders("A1,2026-01-30 10:00:00,pending,PEN,12.00,0.00,PagoEfectivo,,,\n", name="orders-restated.csv")
    with dg.DagsterInstance.ephemeral() as instance:
        inbox.refuse = 100   # the server keeps refusing: every attempt fails, the run fails, an alert is raised
        results = run_with_emails(home, instance)
        assert [r.success for r in results] == [False, False]
        alerts = home.query("SELECT kind, store_id, business_date, severity, message, resolved_at FROM alerts "
                            "WHERE kind = 'REPORT_EMAIL_FAILED' ORDER BY store_id NULLS FIRST")
        # the day's report and the restated store's January close; each filed under its report's date
        assert [(a["store_id"], a["business_date"], a["severity"], a["resolved_at"]) for a in alerts] == [
            (None, D("2026-01-30"), "critical", None), ("shop", D("2026-01-31"), "critical", None)]
        assert "451" in alerts[0]["message"] and FINANCE not in alerts[0]["message"]
        assert PASSWORD not in all_logs(instance) and PASSWORD not in alerts[0]["message"]
        assert home.query("SELECT count(*) AS n FROM report_emails WHERE status <> 'sent'")[0]["n"] == 0

        inbox.refuse = 0   # the server is back: the next run sends the new version once and the alert is withdrawn
        before = len(inbox.messages)
        assert all(r.success for r in run_with_emails(home, instance))
        assert [m[REPORT_HEADER] for m in inbox.messages[before:]].count(day) == 1
        assert home.query("SELECT count(*) AS n FROM alerts WHERE kind = 'REPORT_EMAIL_FAILED'")[0]["n"] == 0


def test_a_send_started_and_never_confirmed_is_not_sent_again(home, smtp, monkeypatch):
    inbox, port, ca_file = smtp
    configure(home, port, ca_file, monkeypatch, recipients=[{"address": FINANCE, "language": "en"}])
    seed(home)
    with dg.DagsterInstance.ephemeral() as instance:
        assert all(r.success for r in run_with_emails(home, instance))
        # as if the process died between handing a message over and recording it
        from pagorecon_dagster.warehouse.duckdb import connect
        with connect(home_lake(home.path)) as con:
            con.execute("UPDATE report_emails SET status = 'sending', sent_at = NULL")
        inbox.messages.clear()
        results = run_with_emails(home, instance)
        logs = all_logs(instance)
    assert all(r.success for r in results) and inbox.messages == []
    assert "a send was started and never confirmed" in logs


@pytest.mark.parametrize("catalog", ["local", pytest.param("postgres", marks=pytest.mark.postgres_lake)])
def test_two_runs_sending_at_once_send_each_version_once(home, smtp, monkeypatch, catalog):
    inbox, port, ca_file = smtp
    configure(home, port, ca_file, monkeypatch, recipients=[{"address": FINANCE, "language": "en"}])
    with contextlib.ExitStack() as stack:
        if catalog == "postgres":  # where two inserts into one table commit side by side
            postgres_lake.use_catalog(home.path, stack.enter_context(postgres_lake.database()))
            assert load_settings(home.path).lake.kind == "postgres"
        two_runs_sending_at_once(home, inbox)


def two_runs_sending_at_once(home, inbox):
    seed(home)
    with dg.DagsterInstance.ephemeral() as instance:
        assert all(r.success for r in run_with_emails(home, instance))
    assert inbox.to(FINANCE)
    lake = home_lake(home.path)
    with connect(lake) as con:  # the day's all-stores report is due again
        con.execute("DELETE FROM report_emails WHERE report = ?", [all_stores_path(D("2026-01-30"))])
    inbox.messages.clear()
    settings = load_settings(home.path)
    both_read = threading.Barrier(2, timeout=60)

    class ReadsThenWaits:
        """The warehouse connection, pausing once after reading report_emails in the sending transaction,
        so both runs have read it before either writes (the other run's rows are not there yet)."""

        def __init__(self, con):
            self.con, self.paused = con, False

        def execute(self, sql, *args):
            result = self.con.execute(sql, *args)
            if "FROM report_emails WHERE report IN" in sql and not self.paused:
                self.paused = True
                both_read.wait()
            return result

        def __getattr__(self, name):
            return getattr(self.con, name)

    @contextlib.contextmanager
    def pausing_connect():
        with connect(lake) as con:
            yield ReadsThenWaits(con)

    outcomes, errors = [], []

    def run(name: str) -> None:
        try:
            outcomes.append(send_reports(settings, pausing_connect, mailer(settings), all_stores_reports,
                                         all_stores_dues(None, ["2026-01-30"], D("2026-02-01")), run_id=name, log=print))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"run-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert len(inbox.to(FINANCE)) == 1
    assert sorted(len(o.sent) for o in outcomes) == [0, 1]
    with connect(lake) as con:
        assert con.execute("SELECT count(*), min(status) FROM report_emails WHERE report = ?",
                           [all_stores_path(D("2026-01-30"))]).fetchone() == (1, "sent")


def test_the_server_certificate_is_verified(home, smtp, tmp_path, monkeypatch, quick_retries):
    """A certificate no configured CA signed is refused: nothing is sent."""
    inbox, port, _ = smtp
    (tmp_path / "other").mkdir()
    other_ca, _ = self_signed(tmp_path / "other")
    configure(home, port, other_ca, monkeypatch, recipients=[{"address": FINANCE, "language": "en"}])
    seed(home)
    with dg.DagsterInstance.ephemeral() as instance:
        results = run_with_emails(home, instance)
        logs = all_logs(instance)
    assert not results[0].success and inbox.messages == []
    assert "CERTIFICATE_VERIFY_FAILED" in logs


def test_file_delivery_writes_eml_files_into_the_mailbox(home, monkeypatch):
    home.config(email={"delivery": "file", "recipients": [{"address": FINANCE, "language": "es", "stores": "all"}]})
    seed(home)
    with dg.DagsterInstance.ephemeral() as instance:
        assert all(r.success for r in run_with_emails(home, instance))
    files = sorted((home.path / "mailbox").glob("*.eml"))
    subjects = sorted(email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Subject"] for p in files)
    assert subjects == ["pagorecon: Cierre de mes: Canonical Shop (shop) — enero 2026 (2026-01)",
                        "pagorecon: Cierre de mes: Shopify Store (shopi) — enero 2026 (2026-01)",
                        "pagorecon: Todas las tiendas — 2026-01-30"]


def test_the_account_is_env_vars_the_ui_names_but_never_shows(home, smtp, monkeypatch):
    inbox, port, ca_file = smtp
    configure(home, port, ca_file, monkeypatch)
    definitions = build_definitions(load_settings(home.path))
    mailer = definitions.resources["mailer"]
    assert isinstance(mailer.username, dg.EnvVar) and mailer.username.env_var_name == USERNAME_ENV
    assert isinstance(mailer.password, dg.EnvVar) and mailer.password.env_var_name == PASSWORD_ENV
    snapshot = serialize_value(RepositorySnap.from_def(definitions.get_repository_def()))  # what the UI is given
    assert PASSWORD_ENV in snapshot and PASSWORD not in snapshot and PASSWORD not in repr(mailer)


def test_the_automation_emails_a_report_after_writing_it(home, monkeypatch):
    home.config(email={"delivery": "file", "recipients": [{"address": FINANCE}]})
    seed(home)
    definitions = build_definitions(load_settings(home.path))
    selection = dg.AssetSelection.assets("all_stores_report", "all_stores_report_emails")
    with dg.DagsterInstance.ephemeral() as instance:
        first = dg.evaluate_automation_conditions(definitions, instance, asset_selection=selection)
        home.run("2026-01-30", "2026-01-30", instance=instance)
        after = dg.evaluate_automation_conditions(definitions, instance, asset_selection=selection, cursor=first.cursor)
        assert set(after.get_requested_partitions(dg.AssetKey("all_stores_report_emails"))) == {"2026-01-30"}


@pytest.mark.parametrize("section, refusal", [
    ({"recipients": [{"address": FINANCE}]}, "`email.server.host` is required to send by smtp"),
    ({"server": {"host": "smtp.example.pe"}, "recipients": [{"address": FINANCE}]}, "`email.from_address` is required"),
    ({"delivery": "file", "recipients": [{"address": "finanzas"}]}, "`email.recipients[0].address` must be an email address"),
    ({"delivery": "file", "recipients": [{"address": FINANCE, "stores": ["nope"]}]},
     "`email.recipients[0].stores` names store(s) not in `stores`: nope"),
    ({"delivery": "file", "recipients": [{"address": FINANCE, "files": "link"}]}, "`email.link_base_url` is required"),
    ({"delivery": "file", "recipients": [{"address": FINANCE}, {"address": FINANCE}]}, "`email.recipients[1].address`"),
    ({"delivery": "pigeon"}, "`email.delivery` must be one of smtp, file"),
    ({"server": {"port": 70000}}, "`email.server.port` must be a whole number 1-65535"),
    ({"password": "x"}, "`email` has unknown key(s) password"),
])
def test_a_bad_email_section_is_refused_naming_the_key(home, section, refusal):
    home.config(email=section)
    with pytest.raises(ConfigError) as refused:
        load_settings(home.path)
    assert refusal in str(refused.value)


def test_an_email_section_reads_into_the_settings_and_round_trips(home):
    import yaml

    from pagorecon_dagster.config import parse_config

    section = {"server": {"host": "smtp.example.pe", "ca_file": "/etc/pagorecon/mail-ca.pem"},
               "from_address": "pagorecon@example.pe", "link_base_url": "https://finanzas.example.pe/archive",
               "recipients": [{"address": FINANCE, "language": "es", "stores": ["shop"], "files": "link"},
                              {"address": TESORERIA}]}
    home.config(email=section)
    settings = load_settings(home.path)
    first, second = settings.email.recipients
    assert (first.language, first.stores, first.files) == ("es", ("shop",), "link")
    assert (second.language, second.stores, second.files) == (None, "all", "attach")  # None: report_language
    assert (settings.email.delivery, settings.email.server.port, settings.mailbox) == ("smtp", 587, home.path / "mailbox")
    config = yaml.safe_load((home.path / "pagorecon.yaml").read_text(encoding="utf-8"))
    written = parse_config(config).model_dump(mode="json", by_alias=True)
    (home.path / "pagorecon.yaml").write_text(yaml.safe_dump(written, allow_unicode=True), encoding="utf-8")
    assert load_settings(home.path) == settings
