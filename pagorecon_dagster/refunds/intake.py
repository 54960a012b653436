"""Refunds come in from two places: requests people drop in `landing/refunds/<store_id>/`
(ingested into `refund_request_rows`), and proposals from reconciled items flagged
`refund_candidate`. Each new one is created once, checked, and decided (approval.py)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb

from pagorecon_dagster.config import Settings
from pagorecon_dagster.refunds import approval, state
from pagorecon_dagster.warehouse.duckdb import model_sql

SOURCES_SQL = ("requested_refunds", "proposed_refunds")
# Tables the intake reads; until the reconciliation has run once they may not exist yet.
NEEDED_TABLES = ("orders", "payments", "fx_rates", "recon_items")
INTAKE_ACTOR = "system:intake"


def source_sql(name: str) -> str:
    """`dbt_like_sql/refunds/<name>.sql`."""
    return model_sql(f"refunds/{name}")


@dataclass
class IntakeSummary:
    created: Counter = field(default_factory=Counter)      # by source
    decided: Counter = field(default_factory=Counter)      # by resulting status
    rejections: Counter = field(default_factory=Counter)   # by reason code
    missing_tables: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.created.values())


def missing_tables(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()").fetchall()}
    return tuple(t for t in NEEDED_TABLES if t not in present)


def pending(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Requests and proposals that have no refund yet, requests first, each in filing order."""
    if missing_tables(con):
        return []
    found: list[dict[str, Any]] = []
    for name in SOURCES_SQL:
        found += state.rows(con, f"SELECT * FROM ({source_sql(name)}) WHERE refund_id NOT IN (SELECT refund_id FROM refunds)")
    return found


def requester_account(settings: Settings, landing_file: str | None) -> str | None:
    """The approver account that dropped a request file (its owner, when on the roster): that
    person requested the refund, whatever its `requested_by` column says."""
    owner = approval.owner_of(settings.landing / landing_file) if landing_file else None
    return owner if owner and settings.approver(owner) else None


def intake(con: duckdb.DuckDBPyConnection, settings: Settings, *, now: dt.datetime | None = None) -> IntakeSummary:
    """Create, check and decide every new refund. Each one commits on its own, in order, so each
    check sees the decisions before it (what is still refundable, which refunds are open)."""
    now = now or state.now_utc()
    summary = IntakeSummary(missing_tables=missing_tables(con))
    for candidate in pending(con):
        origin = candidate.pop("origin")
        landing_file = candidate.pop("landing_file", None)
        refund = {**candidate, "requested_at": candidate["requested_at"] or now,
                  "requested_by_user": requester_account(settings, landing_file)}

        def take_in(con, refund=refund, origin=origin) -> dict[str, Any] | None:
            if state.load(con, refund["refund_id"]) is not None:
                return None  # created meanwhile by another intake
            created = state.create(con, refund, actor=INTAKE_ACTOR, why=f"{origin} (requested by {refund['requested_by']})", now=now)
            return approval.decide(con, settings, created, now=now)

        decided = state.atomically(con, take_in)
        if decided is None:
            continue
        summary.created[refund["source"]] += 1
        summary.decided[decided["status"]] += 1
        for code in (decided["rejection_reason"] or "").split(","):
            if code:
                summary.rejections[code] += 1
    return summary
