"""`audit_log`: every decision (who, when, before, after, why), append-only and tamper-evident.

Each entry stores the sha256 of its own canonical content, and that content includes the hash of
the previous entry: changing, removing or reordering any entry breaks the chain from there on,
and `verify_chain` names the first entry that no longer fits."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import duckdb

GENESIS_HASH = "0" * 64
ENTRY_FIELDS = ("seq", "logged_at", "actor", "action", "entity", "entity_id", "before_state", "after_state", "why", "prev_hash")


def state_json(state: dict[str, Any] | None) -> str | None:
    """A state snapshot as stored: JSON with sorted keys, timestamps in UTC ISO-8601."""
    if state is None:
        return None
    return json.dumps(state, sort_keys=True, ensure_ascii=False, default=_json_value)


def _json_value(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return _instant(value)
    return str(value)


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def entry_hash(entry: dict[str, Any]) -> str:
    """sha256 of the entry's canonical content: its fields (hash excluded) as compact sorted JSON."""
    content = {name: entry[name] for name in ENTRY_FIELDS}
    content["logged_at"] = _instant(content["logged_at"])
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def append(
    con: duckdb.DuckDBPyConnection,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    why: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """Append one entry, chained to the last one. Call inside the transaction that makes the change
    it records, so the decision and its record commit together."""
    last = con.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    entry = {
        "seq": seq,
        "logged_at": now.astimezone(dt.timezone.utc),  # microseconds, as TIMESTAMPTZ keeps them
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "before_state": state_json(before),
        "after_state": state_json(after),
        "why": why,
        "prev_hash": prev_hash,
    }
    entry["hash"] = entry_hash(entry)
    con.execute(
        f"INSERT INTO audit_log ({', '.join(entry)}) VALUES ({', '.join('?' for _ in entry)})",
        list(entry.values()),
    )
    return entry


@dataclass(frozen=True)
class ChainReport:
    entries: int
    head: str
    bad_seq: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.bad_seq is None


def entries(con: duckdb.DuckDBPyConnection, *, entity_id: str | None = None) -> list[dict[str, Any]]:
    sql = f"SELECT {', '.join(ENTRY_FIELDS)}, hash FROM audit_log"
    params: list[Any] = []
    if entity_id is not None:
        sql += " WHERE entity_id = ?"
        params.append(entity_id)
    cur = con.execute(sql + " ORDER BY seq", params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def verify_chain(con: duckdb.DuckDBPyConnection) -> ChainReport:
    """Walk the log from the first entry; stop at the first entry that breaks the chain."""
    prev_hash, count = GENESIS_HASH, 0
    for expected_seq, entry in enumerate(entries(con), start=1):
        seq = entry["seq"]
        if seq != expected_seq:
            return ChainReport(count, prev_hash, expected_seq, f"entry {expected_seq} is missing (the next entry found is {seq})")
        if entry["prev_hash"] != prev_hash:
            return ChainReport(
                count, prev_hash, seq,
                f"entry {seq} does not chain to entry {seq - 1}: it records previous hash {entry['prev_hash'][:12]}..., "
                f"entry {seq - 1} hashes to {prev_hash[:12]}... (entry {seq - 1} was changed or removed, or this one was)",
            )
        actual = entry_hash(entry)
        if entry["hash"] != actual:
            return ChainReport(
                count, prev_hash, seq,
                f"entry {seq} ({entry['action']} {entry['entity']} {entry['entity_id']} by {entry['actor']}) was changed "
                f"after it was written: its content hashes to {actual[:12]}..., the stored hash is {entry['hash'][:12]}...",
            )
        prev_hash, count = entry["hash"], count + 1
    return ChainReport(count, prev_hash)
