"""`audit_log`: every decision (who, when, before, after, why), append-only and tamper-evident.

Each entry stores the sha256 of its own canonical content, and that content includes the hash of
the previous entry: changing, removing or reordering any entry breaks the chain from there on,
and `verify_chain` names the first entry that no longer fits.

A chain alone cannot show that its tail was cut off, or that it was rewritten with every hash
recomputed. So each committed head (seq, hash) is also appended to an anchor file outside the
warehouse (`archive/audit-anchor.log`), keyed with `PAGORECON_AUDIT_KEY` when it is set, and
`verify` holds the warehouse against it, and every `refunds` row against its last audited state.

Retention removes entries past their period from the front of the chain only: the removed prefix
is summarised by a checkpoint (its last seq and hash, which the next entry's prev_hash holds),
kept in `audit_checkpoints` and sealed in the anchor file, and the chain verifies from there."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pagorecon_dagster.config import audit_anchor_path, audit_key
from pagorecon_dagster.warehouse.duckdb import next_value
from pagorecon_dagster.warehouse.lake import lake_of

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
    it records, so the decision and its record commit together. Taking the chain's turn first makes
    two processes appending at once conflict at commit: the one that runs again chains to the new head."""
    next_value(con, "audit_turns")
    last = con.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    start = latest_checkpoint(con)
    seq, prev_hash = (last[0] + 1, last[1]) if last else (start.seq + 1, start.hash)
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
class Checkpoint:
    """Entries 1..seq were removed by retention; `hash` is entry seq's (genesis: none removed)."""

    seq: int
    hash: str


GENESIS = Checkpoint(0, GENESIS_HASH)


def latest_checkpoint(con: duckdb.DuckDBPyConnection) -> Checkpoint:
    """Where the chain in the warehouse starts: after the latest checkpoint, or at genesis."""
    if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'audit_checkpoints' AND table_catalog = current_database()").fetchone()[0]:
        return GENESIS   # a warehouse opened read-only before its schema had checkpoints
    row = con.execute("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
    return Checkpoint(row[0], row[1]) if row else GENESIS


def seal_prefix(con: duckdb.DuckDBPyConnection, through_seq: int, *, now: dt.datetime) -> Checkpoint | None:
    """Remove entries up to `through_seq` and record their checkpoint, inside the caller's
    transaction; seal it in the anchor (`Anchor.seal`) once that commits. None: nothing to remove."""
    start = latest_checkpoint(con)
    head = con.execute("SELECT hash FROM audit_log WHERE seq = ?", [through_seq]).fetchone()
    if through_seq <= start.seq or head is None:
        return None
    removed, first, last = con.execute(
        "SELECT count(*), min(logged_at), max(logged_at) FROM audit_log WHERE seq <= ?", [through_seq]).fetchone()
    con.execute("INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?, ?, ?)", [through_seq, head[0], removed, first, last, now])
    con.execute("DELETE FROM audit_log WHERE seq <= ?", [through_seq])
    return Checkpoint(through_seq, head[0])


@dataclass(frozen=True)
class ChainReport:
    entries: int
    head: str
    bad_seq: int | None = None
    problem: str | None = None
    since: int = 0   # the checkpoint the chain starts after (0: genesis)

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
    """Walk the log from the first entry after the latest checkpoint; stop at the first entry that
    breaks the chain."""
    start = latest_checkpoint(con)
    prev_hash, count = start.hash, 0
    for expected_seq, entry in enumerate(entries(con), start=start.seq + 1):
        seq = entry["seq"]
        if seq <= start.seq:
            return ChainReport(count, prev_hash, seq, f"entry {seq} is still in audit_log, but the checkpoint at entry {start.seq} "
                               f"removed every entry up to it (it was put back, or written directly)", start.seq)
        if seq != expected_seq:
            return ChainReport(count, prev_hash, expected_seq, f"entry {expected_seq} is missing (the next entry found is {seq})", start.seq)
        if entry["prev_hash"] != prev_hash:
            return ChainReport(
                count, prev_hash, seq,
                f"entry {seq} does not chain to entry {seq - 1}: it records previous hash {entry['prev_hash'][:12]}..., "
                f"entry {seq - 1} hashes to {prev_hash[:12]}... (entry {seq - 1} was changed or removed, or this one was)",
                start.seq,
            )
        actual = entry_hash(entry)
        if entry["hash"] != actual:
            return ChainReport(
                count, prev_hash, seq,
                f"entry {seq} ({entry['action']} {entry['entity']} {entry['entity_id']} by {entry['actor']}) was changed "
                f"after it was written: its content hashes to {actual[:12]}..., the stored hash is {entry['hash'][:12]}...",
                start.seq,
            )
        prev_hash, count = entry["hash"], count + 1
    return ChainReport(count, prev_hash, since=start.seq)


# -- the anchor outside the warehouse ------------------------------------------------------------

UNKEYED = "-"
CHECKPOINT_WORD = "checkpoint"   # anchor line `checkpoint seq hash mark`: a sealed checkpoint


@dataclass(frozen=True)
class Anchor:
    """`archive/audit-anchor.log`: one line `seq hash mark` per committed entry, and one line
    `checkpoint seq hash mark` per retention checkpoint, append-only. `mark` is HMAC-SHA256(key,
    the line's other fields joined by spaces) when `PAGORECON_AUDIT_KEY` is set, else `-`."""

    path: Path
    key: bytes | None

    @classmethod
    def of_home(cls, home: Path) -> Anchor:
        return cls(audit_anchor_path(home), audit_key())

    @classmethod
    def of_connection(cls, con: duckdb.DuckDBPyConnection) -> Anchor | None:
        """The anchor of the home whose warehouse `con` is on, wherever its catalog lives; None for a
        scratch lake, which belongs to no home."""
        lake = lake_of(con)
        return cls.of_home(Path(lake.home)) if lake is not None and lake.home else None

    def mark(self, seq: int, head: str, kind: str = "") -> str:
        if self.key is None:
            return UNKEYED
        fields = f"{kind} {seq} {head}" if kind else f"{seq} {head}"
        return hmac.new(self.key, fields.encode("ascii"), hashlib.sha256).hexdigest()

    def record(self, heads: list[tuple[int, str]]) -> None:
        """Append and fsync one line per committed head."""
        self._append("".join(f"{seq} {head} {self.mark(seq, head)}\n" for seq, head in heads))

    def seal(self, checkpoint: Checkpoint) -> None:
        """Append and fsync the line of a committed checkpoint."""
        seq, head = checkpoint.seq, checkpoint.hash
        self._append(f"{CHECKPOINT_WORD} {seq} {head} {self.mark(seq, head, CHECKPOINT_WORD)}\n")

    def _append(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, text.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def lines(self) -> list[tuple[int, str]]:
        if not self.path.exists():
            return []
        return list(enumerate(self.path.read_text(encoding="ascii", errors="replace").splitlines(), start=1))


def personal_digest(refund_id: str, value: str | None, key: bytes | None) -> str | None:
    """A personal value as the audit log can hold it: a digest, keyed when the audit key is set
    (the masked value alone would not show an account replaced by one with the same last digits)."""
    if not value:
        return None
    message = f"{refund_id}\x00{value}".encode("utf-8")
    if key is None:
        return "sha256:" + hashlib.sha256(message).hexdigest()
    return "hmac-sha256:" + hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass
class Verification:
    chain: ChainReport
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.problems


def verify(con: duckdb.DuckDBPyConnection, anchor: Anchor, *, unaudited: tuple[str, ...], personal: tuple[str, ...]) -> Verification:
    """The chain, the chain against its anchor, and every refund against its last audited state.
    `unaudited` columns are notes kept outside the audit log; `personal` ones are audited as digests."""
    result = Verification(verify_chain(con))
    heads = {r[0]: r[1] for r in con.execute("SELECT seq, hash FROM audit_log").fetchall()}
    result.problems += _anchor_problems(anchor, heads, latest_checkpoint(con), result.notes)
    result.problems += _refund_problems(con, anchor.key, unaudited=unaudited, personal=personal, notes=result.notes)
    return result


def _anchor_problems(anchor: Anchor, heads: dict[int, str], start: Checkpoint, notes: list[str]) -> list[str]:
    where = f"archive/{anchor.path.name}"
    problems: list[str] = []
    anchored: list[tuple[int, int, str]] = []  # (line, seq, hash)
    sealed: list[tuple[int, int, str]] = []    # checkpoint lines, the same way
    unchecked = 0
    for number, line in anchor.lines():
        parts = line.split()
        kind = parts.pop(0) if len(parts) == 4 and parts[0] == CHECKPOINT_WORD else ""
        if len(parts) != 3 or not parts[0].isdigit() or len(parts[1]) != 64:
            problems.append(f"{where} line {number} is not `seq hash mark` or `checkpoint seq hash mark`: the anchor file was edited")
            continue
        seq, head, mark = int(parts[0]), parts[1], parts[2]
        if anchor.key is not None and not hmac.compare_digest(mark, anchor.mark(seq, head, kind)):
            problems.append(f"anchor line {number} does not carry a valid key mark ({where}): it was not written by pagorecon "
                            f"with this PAGORECON_AUDIT_KEY (the anchor was forged, or the key changed)")
            continue
        unchecked += anchor.key is None and mark != UNKEYED
        (sealed if kind else anchored).append((number, seq, head))
    if unchecked:
        notes.append(f"{unchecked} keyed anchor line(s) not checked: PAGORECON_AUDIT_KEY is not set")
    problems += _checkpoint_problems(where, start, sealed)
    if start.seq:   # the removed prefix's head is still checked against the head anchored for it
        heads = {start.seq: start.hash, **heads}
    last_seq = max(heads, default=0)
    top = max(anchored, key=lambda a: a[1], default=(0, 0, GENESIS_HASH))
    if top[1] > last_seq:
        problems.append(f"entries {last_seq + 1}..{top[1]} were removed from audit_log: {where} line {top[0]} anchored "
                        f"entry {top[1]} ({top[2][:12]}...), the warehouse ends at entry {last_seq}")
    for number, seq, head in anchored:
        if seq in heads and heads[seq] != head:
            problems.append(f"entry {seq} does not match the head anchored in {where} line {number}: it hashes to "
                            f"{heads[seq][:12]}..., the anchor holds {head[:12]}... (the chain was rewritten from entry {seq} or before)")
            break
    if last_seq > top[1]:
        problems.append(f"entries {top[1] + 1}..{last_seq} are not anchored in {where}: they were added to the warehouse "
                        f"directly, or a write stopped between its commit and its anchor; review them before trusting them")
    return problems


def _checkpoint_problems(where: str, start: Checkpoint, sealed: list[tuple[int, int, str]]) -> list[str]:
    """The warehouse's latest checkpoint is the latest one the anchor seals, hash for hash."""
    last = max(sealed, key=lambda s: s[1], default=(0, 0, GENESIS_HASH))
    if (last[1], last[2]) == (start.seq, start.hash):
        return []
    if start.seq and not any((seq, head) == (start.seq, start.hash) for _, seq, head in sealed):
        return [f"audit_log starts after a checkpoint at entry {start.seq} that {where} does not seal: entries 1..{start.seq} "
                f"were removed other than by `pagorecon retention` (or the checkpoint was rewritten)"]
    return [f"{where} line {last[0]} seals a checkpoint at entry {last[1]} ({last[2][:12]}...), the warehouse's latest is at "
            f"entry {start.seq}: the warehouse is older than the last retention run, or its checkpoint was removed"]


def _refund_problems(con, key: bytes | None, *, unaudited, personal, notes: list[str]) -> list[str]:
    cur = con.execute("SELECT * FROM refunds ORDER BY refund_id")
    names = [d[0] for d in cur.description]
    current = {row[0]: dict(zip(names, row)) for row in cur.fetchall()}
    audited = {
        entity_id: (seq, json.loads(after)) for entity_id, seq, after in con.execute(
            "SELECT entity_id, seq, after_state FROM audit_log WHERE entity = 'refund' "
            "QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY seq DESC) = 1"
        ).fetchall() if after is not None
    }
    problems: list[str] = []
    skipped = 0
    for refund_id in sorted(set(current) | set(audited)):
        if refund_id not in audited:
            problems.append(f"refund {refund_id} is not in the audit log: it was written to `refunds` directly")
            continue
        seq, state = audited[refund_id]
        if refund_id not in current:
            problems.append(f"refund {refund_id} is in the audit log (entry {seq}) but not in `refunds`: it was deleted directly")
            continue
        row = current[refund_id]
        differ = [c for c in names if c not in unaudited and c not in personal and c in state
                  and json.loads(state_json({c: row[c]}))[c] != state[c]]
        for column in personal:
            if f"{column}_digest" not in state:
                continue  # written before personal columns were audited as digests
            digest = state[f"{column}_digest"]
            if digest is not None and digest.startswith("hmac-") and key is None:
                skipped += 1
                continue
            keyed = key if digest is None or digest.startswith("hmac-") else None
            if personal_digest(refund_id, row[column], keyed) != digest:
                differ.append(column)
        if differ:
            problems.append(f"refund {refund_id} differs from its last audited state (entry {seq}) in {', '.join(differ)}: "
                            f"it was changed in `refunds` without a decision; restore it from the audit log and investigate")
    if skipped:
        notes.append(f"{skipped} keyed personal column(s) not checked: PAGORECON_AUDIT_KEY is not set")
    return problems
