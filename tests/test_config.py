"""`pagorecon.yaml` is read by one model: every section refuses an unknown key, a value of the wrong
type and a value out of bounds with one error naming the key path; a full file reads back whole."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from pagorecon_dagster.config import (
    AlertsConfig,
    ConfigError,
    REFUND_EXECUTORS,
    RefundsConfig,
    ScheduleConfig,
    load_settings,
    parse_config,
    parse_settings,
)
from pagorecon_dagster.refunds import payout

STORE = {"id": "shop", "order_format": "canonical"}

FULL = textwrap.dedent("""\
    stores:
      - id: lima_shop
        name: Lima Shop
        order_format: shopify
        reference_field: payment_reference
        auto_refund_limit: "150.00"
      - id: canon
        order_format: canonical
    start_date: "2025-03-01"
    fx_tolerance_pct: 1.5
    missing_payment_grace_business_days: 3
    extra_non_working_days: ["2025-12-26", "2025-07-28"]
    alerts:
      refund_rate_pct: 7.5
      unreconciled_pct: 12
      statement_cutoff_business_days: 2
      refund_overdue_business_days: 5
    schedule: {hour: 7, lookback_days: 10}
    refunds: {executor: payout_file}
    report_language: es
    approvers:
      - {user: maria, name: María Quispe, approval_limit: "2000.00"}
      - {user: luis}
""")


def refusal(**overrides) -> str:
    with pytest.raises(ConfigError) as raised:
        parse_settings({"stores": [STORE], **overrides}, home=Path("/nowhere"))
    return str(raised.value)


@pytest.mark.parametrize(("overrides", "message"), [
    # the top level
    ({"start": "2025-01-01"}, "unknown key(s) start; allowed: stores, start_date, fx_tolerance_pct, "
     "missing_payment_grace_business_days, extra_non_working_days, alerts, report_language, refunds, schedule, rates, approvers, retention, health, email, warehouse"),
    ({"missing_payment_grace_business_days": "two"}, "`missing_payment_grace_business_days` must be a whole number >= 0, got 'two'"),
    ({"fx_tolerance_pct": 101}, "`fx_tolerance_pct` must be a number between 0 and 100, got 101"),
    ({"report_language": "fr"}, "`report_language` must be one of en, es, got 'fr'"),
    # the warehouse
    ({"warehouse": {"catalog": "mysql"}}, "`warehouse.catalog` must be one of local, postgres, got 'mysql'"),
    ({"warehouse": {"catalog": "postgres"}}, "`warehouse.postgres` is required with `catalog: postgres`, like \"host=db dbname=pagorecon_lake user=pagorecon\""),
    ({"warehouse": {"catalog": "postgres", "postgres": "host=db password=secret"}}, "`warehouse.postgres` must not hold a password: set PGPASSWORD or ~/.pgpass"),
    ({"warehouse": {"snapshot_retention_days": 0}}, "`warehouse.snapshot_retention_days` must be a whole number 1-3650, got 0"),
    ({"start_date": "01/03/2025"}, "`start_date` must be an ISO date YYYY-MM-DD, got '01/03/2025'"),
    # stores
    ({"stores": [{**STORE, "url": "x"}]},
     "`stores[0]` has unknown key(s) url; allowed: id, name, order_format, reference_field, auto_refund_limit, "
     "source, shop_domain, base_url, pagoefectivo_match, columns"),
    ({"stores": [{**STORE, "id": 7}]}, "`stores[0].id` must match [a-z0-9_]{1,32}, got 7"),
    ({"stores": [STORE, {**STORE, "auto_refund_limit": "-5.00"}]},
     "`stores[1].auto_refund_limit` '-5.00' is negative; amounts must be >= 0"),
    ({"stores": [{**STORE, "order_format": "shopify", "reference_field": "cip"}]},
     "`stores[0].reference_field` must be one of name, id, payment_reference for shopify orders, got 'cip'"),
    ({"stores": [{"order_format": "canonical"}]}, "`stores[0].id` is required"),
    ({"stores": {"shop": STORE}}, "`stores` must be a non-empty list of stores"),
    # alerts
    ({"alerts": {"refund_rate": 5}}, "`alerts` has unknown key(s) refund_rate; allowed: refund_rate_pct, unreconciled_pct, "
     "statement_cutoff_business_days, refund_overdue_business_days, fx_rate_due_hour"),
    ({"alerts": {"unreconciled_pct": "ten"}}, "`alerts.unreconciled_pct` must be a number, got 'ten'"),
    ({"alerts": {"refund_rate_pct": 150}}, "`alerts.refund_rate_pct` must be a number between 0 and 100, got 150"),
    ({"alerts": {"refund_overdue_business_days": -1}}, "`alerts.refund_overdue_business_days` must be a whole number >= 0, got -1"),
    ({"alerts": [5]}, "`alerts` must be a mapping with keys refund_rate_pct, unreconciled_pct, "
     "statement_cutoff_business_days, refund_overdue_business_days, fx_rate_due_hour"),
    # schedule
    ({"schedule": {"minute": 30}}, "`schedule` has unknown key(s) minute; allowed: hour, lookback_days, hourly, hourly_minute"),
    ({"schedule": {"hour": "6am"}}, "`schedule.hour` must be a whole number 0-23 (Lima time), got '6am'"),
    ({"schedule": {"lookback_days": 400}}, "`schedule.lookback_days` must be a whole number 0-366, got 400"),
    # refunds
    ({"refunds": {"url": "https://bank"}}, "`refunds` has unknown key(s) url; allowed: executor"),
    ({"refunds": {"executor": 3}}, "`refunds.executor` must be one of api, payout_file, got 3"),
    ({"refunds": {"executor": "cash"}}, "`refunds.executor` must be one of api, payout_file, got 'cash'"),
    # approvers
    ({"approvers": [{"user": "maria", "limit": "1.00"}]}, "`approvers[0]` has unknown key(s) limit; allowed: user, name, approval_limit"),
    ({"approvers": [{"user": 42}]}, "`approvers[0].user` must be an operating-system account name (letters, digits, _ . -), got 42"),
    ({"approvers": [{"user": "maria", "approval_limit": "-1"}]}, "`approvers[0].approval_limit` '-1' is negative; amounts must be >= 0"),
    ({"approvers": [{"user": "maria", "name": "  "}]}, "`approvers[0].name` must be a non-empty string, got '  '"),
])
def test_each_section_refuses_a_bad_value_with_one_error_naming_the_key(overrides, message):
    assert refusal(**overrides) == f"pagorecon.yaml: {message}"


def test_the_refund_rate_threshold_is_a_percentage_like_the_unreconciled_one():
    for key in ("refund_rate_pct", "unreconciled_pct"):
        assert refusal(alerts={key: 100.5}) == f"pagorecon.yaml: `alerts.{key}` must be a number between 0 and 100, got 100.5"
        assert parse_settings({"stores": [STORE], "alerts": {key: 100}}, home=Path("/h")).alerts.model_dump()[key] == 100


def test_a_file_that_is_not_a_mapping_is_refused_naming_the_file(home):
    (home.path / "pagorecon.yaml").write_text("- shop\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(home.path)
    assert str(raised.value) == f"{home.path / 'pagorecon.yaml'}: must be a mapping with at least `stores`"


def test_a_full_file_reads_into_the_settings_and_round_trips(home):
    (home.path / "pagorecon.yaml").write_text(FULL, encoding="utf-8")
    settings = load_settings(home.path)
    lima, canon = settings.stores
    assert (lima.id, lima.name, lima.order_format, lima.reference_field, lima.auto_refund_limit_cents) == (
        "lima_shop", "Lima Shop", "shopify", "payment_reference", 15000)
    assert (canon.name, canon.reference_field, canon.auto_refund_limit_cents) == ("canon", "order_id", 0)
    assert settings.start_date == dt.date(2025, 3, 1)
    assert settings.fx_tolerance_pct == Decimal("1.5")
    assert settings.missing_payment_grace_business_days == 3
    assert settings.extra_non_working_days == (dt.date(2025, 7, 28), dt.date(2025, 12, 26))
    assert settings.alerts == AlertsConfig(refund_rate_pct=Decimal("7.5"), unreconciled_pct=Decimal("12"),
                                           statement_cutoff_business_days=2, refund_overdue_business_days=5)
    assert settings.refund_rate_pct == Decimal("7.5")
    assert settings.schedule == ScheduleConfig(hour=7, lookback_days=10)
    assert settings.refunds == RefundsConfig(executor="payout_file")
    assert settings.report_language == "es"
    assert [(a.user, a.name, a.approval_limit_cents) for a in settings.approvers] == [
        ("maria", "María Quispe", 200000), ("luis", "luis", None)]

    written = parse_config(yaml.safe_load(FULL)).model_dump(mode="json", by_alias=True)
    assert written["stores"][0]["auto_refund_limit"] == "150.00"   # written back as the operator writes it
    (home.path / "pagorecon.yaml").write_text(yaml.safe_dump(written, allow_unicode=True), encoding="utf-8")
    assert load_settings(home.path) == settings


def test_an_empty_section_takes_every_default():
    settings = parse_settings({"stores": [STORE], "alerts": None, "schedule": None, "refunds": {"executor": " "},
                               "approvers": None, "extra_non_working_days": None}, home=Path("/h"))
    assert (settings.alerts, settings.schedule, settings.refunds) == (AlertsConfig(), ScheduleConfig(), RefundsConfig())
    assert (settings.approvers, settings.extra_non_working_days) == ((), ())


def test_every_alert_threshold_is_read_by_an_alert_rule():
    rules = "\n".join(p.read_text(encoding="utf-8") for p in Path(__file__).parents[1].glob("dbt_like_sql/alerts/*.sql"))
    read = set(re.findall(r"getvariable\('([a-z_]+)'\)", rules))
    assert set(AlertsConfig.model_fields) <= read


def test_the_executors_the_model_accepts_are_the_ones_payout_runs():
    assert REFUND_EXECUTORS == payout.EXECUTORS
    for name in payout.EXECUTORS:
        assert parse_config({"stores": [STORE], "refunds": {"executor": name}}).refunds.executor == name


def test_the_yaml_executor_is_what_the_payout_uses(monkeypatch):
    monkeypatch.delenv(payout.EXECUTOR_ENV, raising=False)
    monkeypatch.setenv("PAGORECON_REFUND_API_URL", "http://provider.invalid")
    settings = parse_settings({"stores": [STORE], "refunds": {"executor": "payout_file"}}, home=Path("/h"))
    assert payout.executor_name(settings) == "payout_file"
