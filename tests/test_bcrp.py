"""The SBS rates from the BCRP statistics API, against its sandbox on loopback: the series codes and
the daily date format asked, business days only, "n.d." days, retries, the `fx/` landing file the
ingester takes, and FX_RATE_MISSING when a fetch fails or a business day has no rate."""

import datetime as dt
from decimal import Decimal

import dagster as dg
import pytest
from test_alerts import alerts

from pagorecon_dagster.config import ConfigError, load_settings
from pagorecon_dagster.definitions import build_definitions
from pagorecon_dagster.orchestration.hourly import HOURLY_JOB
from pagorecon_dagster.rates.bcrp import BcrpClient, BcrpError, Rate, period_date
from pagorecon_dagster.resources import BCRP, BcrpApi
from pagorecon_dagster.sandbox.bcrp_api import PATH_PREFIX, BcrpSandbox

D = dt.date.fromisoformat


@pytest.fixture
def bcrp():
    rates = {D("2026-11-26"): ("3.750", "3.756"), D("2026-11-27"): ("3.748", "3.755"), D("2026-11-30"): ("3.741", "3.749")}
    with BcrpSandbox(rates, holidays=[D("2026-12-08")]) as sandbox:
        yield sandbox


def client(sandbox, sleeps=None):
    return BcrpClient(sandbox.base_url, timeout=2.0, backoff=0.01, sleep=(sleeps if sleeps is not None else []).append)


def test_both_sbs_series_are_asked_with_daily_dates_and_only_business_days_with_values_are_rates(bcrp):
    bcrp.rates.pop(D("2026-11-27"))  # listed by the API, "n.d." in both series
    fetched = client(bcrp).fetch(D("2026-11-25"), D("2026-12-01"))
    assert bcrp.requests == [f"{PATH_PREFIX}/PD04645PD-PD04646PD/json/2026-11-25/2026-12-01"]
    assert fetched.rates == (Rate(D("2026-11-26"), Decimal("3.750"), Decimal("3.756")),
                             Rate(D("2026-11-30"), Decimal("3.741"), Decimal("3.749")))
    # the weekend is not listed at all; the other business days are "n.d."
    assert fetched.no_value_days == (D("2026-11-25"), D("2026-11-27"), D("2026-12-01"))


def test_period_names_are_days_with_spanish_month_abbreviations():
    assert [period_date(n) for n in ("28.Nov.26", "03.Ago.26", "15.Set.26", "02.Ene.27", "31.Dic.26")] == [
        D("2026-11-28"), D("2026-08-03"), D("2026-09-15"), D("2027-01-02"), D("2026-12-31")]
    with pytest.raises(ValueError, match="28/11/2026"):
        period_date("28/11/2026")


def test_a_5xx_is_retried_a_4xx_is_not_and_retries_are_bounded(bcrp):
    sleeps = []
    bcrp.fail_next(2, status=503)
    assert len(client(bcrp, sleeps).fetch(D("2026-11-26"), D("2026-11-26")).rates) == 1
    assert len(bcrp.requests) == 3 and sleeps == [0.01, 0.02]
    bcrp.fail_next(4, status=500)
    with pytest.raises(BcrpError, match=r"no answer after 4 attempts \(HTTP 500\)"):
        client(bcrp).fetch(D("2026-11-26"), D("2026-11-26"))
    bcrp.requests.clear()
    bcrp.fail_next(1, status=404)
    with pytest.raises(BcrpError, match="HTTP 404"):
        client(bcrp).fetch(D("2026-11-26"), D("2026-11-26"))
    assert len(bcrp.requests) == 1  # a 4xx: asked once


def test_an_unknown_series_is_a_400_naming_the_url(bcrp, monkeypatch):
    import pagorecon_dagster.rates.bcrp as module

    monkeypatch.setattr(module, "SELL_SERIES", "PD99999PD")
    with pytest.raises(BcrpError, match=r"PD04645PD-PD99999PD/json/2026-11-26/2026-11-26: HTTP 400"):
        client(bcrp).fetch(D("2026-11-26"), D("2026-11-26"))


def test_rates_settings_are_checked_by_key(home):
    home.config(rates={"bcrp": "yes"})
    with pytest.raises(ConfigError, match=r"`rates.bcrp` must be true or false, got 'yes'"):
        load_settings(home.path)
    home.config(alerts={"fx_rate_due_hour": 24})
    with pytest.raises(ConfigError, match=r"`alerts.fx_rate_due_hour` must be a whole number 0-23 \(Lima time\), got 24"):
        load_settings(home.path)


def sync(home, sandbox, day):
    definitions = build_definitions(load_settings(home.path), resources={BCRP: BcrpApi(base_url=sandbox.base_url)})
    return definitions.resolve_job_def(HOURLY_JOB).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), run_config={"ops": {"pull_into_landing": {"config": {"day": day}}}})


def test_the_sync_lands_rates_the_ingester_takes_and_a_missing_rate_or_a_failed_fetch_raise_fx_rate_missing(home, bcrp):
    home.config(rates={"bcrp": True, "lookback_days": 4})
    bcrp.rates[D("2026-12-01")] = ("3.740", "3.747")   # 2026-11-27 and the rest: "n.d."
    bcrp.rates.pop(D("2026-11-27"))
    assert sync(home, bcrp, "2026-12-01").success
    (landed,) = (home.path / "landing" / "fx").iterdir()
    assert landed.name.startswith("bcrp_2026-11-27_2026-12-01_")
    assert landed.read_text() == "date,currency,buy,sell\n2026-11-30,USD,3.741,3.749\n2026-12-01,USD,3.740,3.747\n"
    assert sync(home, bcrp, "2026-12-01").success   # the same rates again: nothing new lands
    assert len(list((home.path / "landing" / "fx").iterdir())) == 1

    home.run("2026-11-27", "2026-12-01", stores=["shop"])
    assert home.query("SELECT date, sell FROM fx_rates ORDER BY date") == [
        {"date": D("2026-11-30"), "sell": Decimal("3.749")}, {"date": D("2026-12-01"), "sell": Decimal("3.747")}]
    # a business day of the feed with no rate (the weekend is not one)
    (missing,) = alerts(home, "FX_RATE_MISSING")
    assert (missing["alert_id"], missing["value"]) == ("FX_RATE_MISSING|*|2026-11-27", "no USD rate")
    assert missing["message"] == "Business day 2026-11-27 has no SBS USD rate from the BCRP (landing/fx) by 20:00 Lima."

    bcrp.fail_next(4, status=503)
    assert sync(home, bcrp, "2026-12-02").success   # a failed fetch is recorded, not a failed run
    assert home.query("SELECT status, end_date, rates, file FROM fx_fetches ORDER BY fetched_at DESC LIMIT 1") == [
        {"status": "failed", "end_date": D("2026-12-02"), "rates": 0, "file": None}]
    home.run("2026-11-27", "2026-12-02", stores=["shop"])
    failed = {a["alert_id"]: a for a in alerts(home, "FX_RATE_MISSING")}
    assert sorted(failed) == ["FX_RATE_MISSING|*|2026-11-27", "FX_RATE_MISSING|*|2026-12-02"]
    assert failed["FX_RATE_MISSING|*|2026-12-02"]["value"] == "fetch failed"
    assert "failed: BCRP http://127.0.0.1:" in failed["FX_RATE_MISSING|*|2026-12-02"]["message"]
    assert "no answer after 4 attempts (HTTP 503); business day 2026-12-02 has no SBS USD rate" in failed["FX_RATE_MISSING|*|2026-12-02"]["message"]

    # the rate is published after all: the next fetch lands it and the alert of that day resolves
    bcrp.rates[D("2026-12-02")] = ("3.735", "3.744")
    assert sync(home, bcrp, "2026-12-02").success
    home.run("2026-11-27", "2026-12-02", stores=["shop"])
    assert [a["alert_id"] for a in alerts(home, "FX_RATE_MISSING") if a["resolved_at"] is None] == ["FX_RATE_MISSING|*|2026-11-27"]
