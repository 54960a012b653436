"""Exactly once on a shared catalog: the payout fault tests of test_refunds_payout_api.py (timeout
after accept, 500 then 200, a worker killed between submitting and recording, two workers at once)
with the warehouse catalog in PostgreSQL and every payout pass in a process of its own, as workers
on several hosts run them. Nothing is locked between those processes: a claim that loses the race
to another worker's commit runs again and finds the refund already claimed."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter

import postgres_lake
import pytest
from conftest import Home
from refunds_fixtures import NOW, reconcile, scenario_home, take_in
from test_refunds_payout_api import AUTO_APPROVED, FIRST, LATER, assert_paid_exactly_once, provider, statuses, wait_for  # noqa: F401

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.refunds import audit, payout, state
from pagorecon_dagster.refunds.provider_api import KEY_ENV, URL_ENV
from pagorecon_dagster.warehouse.duckdb import connect

pytestmark = pytest.mark.postgres_lake


@pytest.fixture(scope="session")
def taken_in_pg_template(tmp_path_factory):
    """The refunds scenario after the intake, its catalog in a PostgreSQL database of its own."""
    with postgres_lake.database() as name:
        home = scenario_home(tmp_path_factory.mktemp("refunds-pg") / "home")
        postgres_lake.use_catalog(home.path, name)
        reconcile(home)
        take_in(home)
        yield home.path, name


@pytest.fixture
def taken_in(taken_in_pg_template, tmp_path) -> Home:
    """A private copy of the scenario: the home, and its catalog in a copy of the database."""
    source, template = taken_in_pg_template
    with postgres_lake.copied_home(source, tmp_path / "home", template) as path:
        yield Home(path)


# One payout pass in a process of its own: home, clock (an ISO instant, or seconds after the real
# now), the provider timeout in seconds. Prints the summary's counts.
PASS = textwrap.dedent("""
    import datetime as dt, json, os, sys
    from pagorecon_dagster.config import load_settings
    from pagorecon_dagster.refunds.payout import pay_out
    from pagorecon_dagster.refunds.provider_api import api_settings
    home, clock, timeout = sys.argv[1:4]
    if clock.startswith("+"):
        at = lambda: dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=float(clock))
    else:
        at = lambda: dt.datetime.fromisoformat(clock)
    api = api_settings(os.environ["{url}"], os.environ["{key}"], timeout_seconds=timeout, backoff_seconds=0.01)
    summary = pay_out(load_settings(home), executor="api", api=api, clock=at)
    print(json.dumps({{"paid": summary.paid, "unknown": summary.unknown}}), flush=True)
""").format(url=URL_ENV, key=KEY_ENV)


def start_pass(home, provider, *, clock: str = LATER.isoformat(), timeout: float = 0.5) -> subprocess.Popen:
    env = {**os.environ, URL_ENV: provider.url, KEY_ENV: provider.api_key}
    return subprocess.Popen([sys.executable, "-c", PASS, str(home.path), clock, str(timeout)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out)


def pay(home, provider, **kwargs) -> dict:
    return finish(start_pass(home, provider, **kwargs))


def assert_audit_anchored(home) -> None:
    """Every committed decision is chained and anchored, and nothing else is: `refunds verify-audit`."""
    with connect(load_settings(home.path).lake, read_only=True) as con:
        result = audit.verify(con, audit.Anchor.of_home(home.path), unaudited=state.UNAUDITED_COLUMNS,
                              personal=state.PERSONAL_COLUMNS)
    assert result.ok, result.problems + [result.chain.problem]


def test_the_catalog_is_in_postgresql(taken_in):
    lake = load_settings(taken_in.path).lake
    assert lake.kind == "postgres" and postgres_lake.PREFIX in lake.catalog
    assert not (taken_in.path / "warehouse" / "catalog.sqlite").exists()
    assert len(statuses(taken_in)) == 6


def test_provider_times_out_after_accepting(taken_in, provider):
    provider.inject("POST", "timeout")  # accepts FIRST, then answers only after the worker gave up
    assert pay(taken_in, provider)["paid"] == 6
    assert_paid_exactly_once(taken_in, provider)
    assert [s.status for s in provider.seen(key=FIRST) if s.method == "GET"] == [404, 200]  # before the POST, after it
    assert statuses(taken_in)[FIRST] == ("paid", 1)
    assert_audit_anchored(taken_in)


def test_provider_answers_500_then_200(taken_in, provider):
    provider.inject("POST", "500")
    assert pay(taken_in, provider)["paid"] == 6
    assert_paid_exactly_once(taken_in, provider)
    assert [(s.method, s.status) for s in provider.seen(key=FIRST)] == [("GET", 404), ("POST", 500), ("GET", 404), ("POST", 201)]


def test_worker_killed_between_submitting_and_recording(taken_in, provider):
    provider.stall_seconds = 30.0
    provider.inject("POST", "timeout")  # the provider pays FIRST and keeps the worker waiting
    process = start_pass(taken_in, provider, clock="+0", timeout=20.0)
    try:
        wait_for(lambda: provider.payouts(FIRST) == 1, seconds=60)
        assert statuses(taken_in)[FIRST] == ("submitted", 1)   # claimed and committed before the call
    finally:
        process.kill()
        process.wait()

    # a pass right after, in another process: FIRST may still be in a worker's hands, so it is left alone
    pay(taken_in, provider, clock="+0")
    assert statuses(taken_in)[FIRST] == ("submitted", 1)
    assert [(s.method, s.status) for s in provider.seen(key=FIRST)] == [("GET", 404)]
    # once the grace is over, the next pass asks the provider first and records its answer
    pay(taken_in, provider, clock="+301")
    assert [(s.method, s.status) for s in provider.seen(key=FIRST) if s.method == "GET"] == [("GET", 404), ("GET", 200)]
    assert statuses(taken_in)[FIRST] == ("paid", 1)
    assert_paid_exactly_once(taken_in, provider)
    assert_audit_anchored(taken_in)


def test_two_worker_processes_at_once(taken_in, provider):
    provider.latency_seconds = 0.1  # every POST takes a while, so the passes overlap
    processes = [start_pass(taken_in, provider, timeout=5.0) for _ in range(2)]
    results = [finish(p) for p in processes]
    assert sum(r["paid"] for r in results) == 6
    assert_paid_exactly_once(taken_in, provider)
    # the claim, not only the idempotency key, kept them apart: each refund was sent once
    assert Counter(s.idempotency_key for s in provider.seen("POST")) == Counter({rid: 1 for rid in AUTO_APPROVED})
    assert_audit_anchored(taken_in)


# Claims FIRST in a process of its own and commits: the rival that wins the race.
RIVAL = textwrap.dedent("""
    import datetime as dt, sys
    from pagorecon_dagster.config import load_settings
    from pagorecon_dagster.refunds import payout, state
    claimed = state.atomically(load_settings(sys.argv[1]).lake, lambda con: payout._claim_next(con, dt.datetime.fromisoformat(sys.argv[2])))
    print(claimed["refund_id"], flush=True)
""")


def test_a_claim_that_loses_the_race_runs_again_and_finds_the_refund_claimed(taken_in):
    """This worker claims FIRST in an open transaction; before it commits, another process claims
    FIRST and commits. This commit conflicts, and the claim runs again: it reads FIRST submitted
    and claims the next refund instead."""
    lake = load_settings(taken_in.path).lake
    tries = []

    def claim(con):
        claimed = payout._claim_next(con, NOW)
        tries.append(claimed["refund_id"])
        if len(tries) == 1:
            rival = subprocess.run([sys.executable, "-c", RIVAL, str(taken_in.path), NOW.isoformat()],
                                   capture_output=True, text=True, timeout=120)
            assert rival.returncode == 0, rival.stderr[-3000:]
            assert rival.stdout.strip() == FIRST
        return claimed

    claimed = state.atomically(lake, claim)
    assert tries[0] == FIRST and len(tries) == 2 and claimed["refund_id"] == tries[1] != FIRST
    assert statuses(taken_in)[FIRST] == ("submitted", 1)
    assert statuses(taken_in)[claimed["refund_id"]] == ("submitted", 1)
    submits = taken_in.query("SELECT entity_id FROM audit_log WHERE action = 'submit' ORDER BY seq")
    assert [s["entity_id"] for s in submits] == [FIRST, claimed["refund_id"]]
    assert_audit_anchored(taken_in)   # the attempt that lost was never anchored
