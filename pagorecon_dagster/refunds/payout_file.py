"""The `payout_file` executor: a bank-transfer batch file (CSV) for the seller's bank, then the
bank's confirmations dropped in `landing/refund_confirmations/` matched back to the refunds.

Exactly once: refunds are claimed into a named batch in one transaction (approved -> submitted),
the file is written from the warehouse afterwards, and a batch whose file was never written is
written on the next run. A refund is never put in a second batch: before claiming, the batches
already in `archive/payouts/` are read, so a warehouse restored from an older backup neither
re-batches a refund the bank already has nor reuses a batch file's name."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from pathlib import Path
from typing import Any

import pandas as pd

from pagorecon_dagster.config import Settings
from pagorecon_dagster.core.lima import parse_timestamps
from pagorecon_dagster.core.masking import mask_text
from pagorecon_dagster.core.money import MoneyError, format_cents, parse_cents
from pagorecon_dagster.ingestion import readers
from pagorecon_dagster.refunds import state
from pagorecon_dagster.refunds.approval import lima_today
from pagorecon_dagster.refunds.state import APPROVED, FAILED, PAID, PAYABLE_SQL, SUBMITTED

EXECUTOR = "payout_file"
ACTOR = "system:payout-file"
BANK_ACTOR = "system:bank-confirmations"
BATCH_COLUMNS = ("refund_id", "store_id", "order_id", "cip", "beneficiary_document", "beneficiary_account",
                 "currency", "amount", "reason")
CONFIRMATION_COLUMNS = ("refund_id", "status", "amount", "currency", "bank_reference", "executed_at", "detail")
REQUIRED_CONFIRMATION_COLUMNS = ("refund_id", "status", "amount", "currency")
CONFIRMATIONS_DIR = "refund_confirmations"
BATCH_PREFIX = "refund-payouts-"
# provider_status while a refund is in a batch whose file is not written yet / once it is.
BATCH_PENDING, IN_BATCH_FILE = "batch_pending", "in_batch_file"


def batches_dir(settings: Settings) -> Path:
    # Full account numbers: kept with the archive, not with the masked reports finance reads.
    return settings.archive / "payouts"


def unwritten_batches(con) -> list[str]:
    """Batches claimed whose file was never written (the worker stopped in between)."""
    return [r[0] for r in con.execute(
        "SELECT DISTINCT payout_batch FROM refunds WHERE provider_status = ? ORDER BY 1", [BATCH_PENDING]
    ).fetchall()]


def archived_batches(settings: Settings) -> dict[str, tuple[str, int | None, str]]:
    """Refund id -> (batch file, amount in céntimos, currency) for every batch file already under
    archive/payouts/ (its subfolders too): what the bank has been given, whatever the warehouse says."""
    found: dict[str, tuple[str, int | None, str]] = {}
    folder = batches_dir(settings)
    for path in sorted(folder.rglob(f"{BATCH_PREFIX}*.csv")) if folder.exists() else []:
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                refund_id = (row.get("refund_id") or "").strip()
                if refund_id and refund_id not in found:
                    try:
                        cents = parse_cents(row.get("amount") or "")
                    except MoneyError:
                        cents = None
                    found[refund_id] = (path.name, cents, (row.get("currency") or "").strip())
    return found


def claim_batch(con, settings: Settings, *, now: dt.datetime) -> tuple[str | None, int]:
    """Move every payable approved refund with a beneficiary account into one new batch (call in
    one transaction). A refund already in an archived batch is recorded as submitted in that
    batch instead. Returns the new batch's name (None when there was nothing to pay) and its size."""
    ids = [r[0] for r in con.execute(
        f"SELECT refund_id FROM refunds WHERE {PAYABLE_SQL} AND beneficiary_account IS NOT NULL ORDER BY approved_at, refund_id"
    ).fetchall()]
    archived = archived_batches(settings)
    for refund_id in [i for i in ids if i in archived]:
        _already_batched(con, refund_id, *archived[refund_id], now=now)
    ids = [i for i in ids if i not in archived]
    if not ids:
        return None, 0
    day = lima_today(now).isoformat()
    used = {r[0] for r in con.execute(
        "SELECT DISTINCT payout_batch FROM refunds WHERE payout_batch LIKE ?", [f"{BATCH_PREFIX}{day}-%"]
    ).fetchall()} | {batch for batch, _, _ in archived.values()}
    number = 1
    while f"{BATCH_PREFIX}{day}-{number:02d}.csv" in used:
        number += 1
    batch = f"{BATCH_PREFIX}{day}-{number:02d}.csv"
    for refund_id in ids:
        state.transition(con, refund_id, expect=(APPROVED,), to=SUBMITTED, actor=ACTOR, action="submit",
                         why=f"put in bank-transfer batch archive/payouts/{batch}", now=now, count_attempt=True,
                         changes={"executor": EXECUTOR, "payout_batch": batch, "submitted_at": now,
                                  "provider_status": BATCH_PENDING})
    return batch, len(ids)


def _already_batched(con, refund_id: str, batch: str, cents: int | None, currency: str, *, now: dt.datetime) -> None:
    refund = state.load(con, refund_id)
    differs = (cents, currency) != (refund["amount_cents"], refund["currency"])
    state.transition(
        con, refund_id, expect=(APPROVED,), to=SUBMITTED, actor=ACTOR, action="submit",
        why=f"already in bank-transfer batch archive/payouts/{batch} (written before the warehouse was restored?): "
            "not put in a second batch", now=now, count_attempt=True,
        changes={"executor": EXECUTOR, "payout_batch": batch, "submitted_at": now, "provider_status": IN_BATCH_FILE,
                 "last_error": (f"archive/payouts/{batch} holds it for {format_cents(cents, currency) or 'an unreadable amount'}, "
                                f"not {format_cents(refund['amount_cents'], refund['currency'])}: check with the bank")
                 if differs else None},
    )


def write_batch(settings: Settings, batch: str) -> Path:
    """Write the batch file from the warehouse (atomically), then mark its refunds as in the file.
    The file carries the beneficiary's document and account unmasked: the bank needs them, so it
    is readable by its owner only."""
    refunds = state.atomically(settings.lake, lambda con: state.rows(
        con, "SELECT * FROM refunds WHERE payout_batch = ? ORDER BY refund_id", [batch]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(BATCH_COLUMNS)
    for r in refunds:
        writer.writerow([r["refund_id"], r["store_id"], r["order_id"] or "", r["cip"], r["beneficiary_document"] or "",
                         r["beneficiary_account"] or "", r["currency"], format_cents(r["amount_cents"]), r["reason"]])
    folder = batches_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / batch
    partial = path.with_name(f".{batch}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(buffer.getvalue())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, path)
    state.atomically(settings.lake, lambda con: con.execute(
        "UPDATE refunds SET provider_status = ? WHERE payout_batch = ? AND provider_status = ?",
        [IN_BATCH_FILE, batch, BATCH_PENDING]))
    return path


# -- bank confirmations --------------------------------------------------------------------------

def confirmation_files(settings: Settings) -> list[Path]:
    folder = settings.landing / CONFIRMATIONS_DIR
    return sorted(folder.rglob("*.csv"), key=lambda p: p.as_posix()) if folder.exists() else []


def unread_confirmation_files(settings: Settings, con) -> list[tuple[Path, readers.FileFacts | None, str | None]]:
    """(path, facts, error) for every confirmation file whose bytes were not read before."""
    found = []
    for path in confirmation_files(settings):
        try:
            facts, error = readers.inspect_file(path), None
        except readers.UnreadableFile as exc:
            facts, error = None, str(exc)
        name = path.relative_to(settings.landing).as_posix()
        digest = facts.sha256 if facts else ""
        seen = con.execute("SELECT count(*) FROM refund_confirmations WHERE file = ? AND sha256 = ?", [name, digest]).fetchone()[0]
        if not seen:
            found.append((path, facts, error))
    return found


def read_confirmations(settings: Settings, files, *, now: dt.datetime) -> dict[str, int]:
    """Match every line of these (unread) confirmation files to its refund; record each line and
    what became of it, one transaction per file (a file another worker read meanwhile is skipped)."""
    outcomes: dict[str, int] = {}
    for path, facts, error in files:
        name = path.relative_to(settings.landing).as_posix()
        lines = _parse(path, facts, error)

        def record(con, name=name, digest=facts.sha256 if facts else "", lines=lines) -> list[str]:
            if con.execute("SELECT count(*) FROM refund_confirmations WHERE file = ? AND sha256 = ?", [name, digest]).fetchone()[0]:
                return []
            applied = []
            for line in lines:
                outcome, detail = _apply(con, name, line, now=now) if line["outcome"] is None else (line["outcome"], line["detail"])
                con.execute(
                    "INSERT INTO refund_confirmations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [name, digest, line["line"], line["refund_id"], line["status"], line["amount_cents"],
                     line["currency"], line["bank_reference"], line["executed_at"], outcome, detail, now],
                )
                applied.append(outcome)
            return applied

        for outcome in state.atomically(settings.lake, record):
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _parse(path: Path, facts: readers.FileFacts | None, error: str | None) -> list[dict[str, Any]]:
    """Each line as a dict with `outcome` None when it can be applied, else why not."""
    def line_of(number, outcome=None, detail=None, **values):
        base = dict.fromkeys(("refund_id", "status", "amount_cents", "currency", "bank_reference", "executed_at"))
        return {**base, **values, "line": number, "outcome": outcome, "detail": detail}

    try:
        if error:
            raise readers.UnreadableFile(error)
        header, delimiter = readers.read_csv_header(path, facts)
        missing = [c for c in REQUIRED_CONFIRMATION_COLUMNS if c not in header]
        if missing:
            raise readers.UnreadableFile(f"missing column(s) {', '.join(missing)}; expected {', '.join(CONFIRMATION_COLUMNS)}")
        records = list(readers.iter_csv_records(path, facts, delimiter))
    except readers.UnreadableFile as exc:
        return [line_of(0, "unreadable_file", str(exc))]
    parsed = []
    for record in records:
        row = {name: (record.fields[i].strip() if i < len(record.fields) else "") for i, name in enumerate(header)}
        values: dict[str, Any] = {
            "refund_id": row.get("refund_id") or None,
            "status": row.get("status", "").lower() or None,
            "currency": row.get("currency", "").upper() or None,
            "bank_reference": row.get("bank_reference") or None,
        }
        problems = []
        if not values["refund_id"]:
            problems.append("refund_id: is empty")
        if values["status"] not in (PAID, FAILED):
            problems.append(f"status: {row.get('status')!r} is not paid or failed")
        try:
            values["amount_cents"] = parse_cents(row.get("amount", ""))
        except MoneyError as exc:
            problems.append(f"amount: {exc}")
        executed = row.get("executed_at", "")
        if executed:
            instant = parse_timestamps(pd.Series([executed])).iloc[0]
            if pd.isna(instant):
                problems.append(f"executed_at: {executed!r} is not an ISO-8601 timestamp")
            else:
                values["executed_at"] = instant.to_pydatetime()
        if problems:
            parsed.append(line_of(record.line, "bad_row", "; ".join(problems), **values))
        else:
            parsed.append(line_of(record.line, None, mask_text(row.get("detail")) or None, **values))
    return parsed


def _apply(con, file: str, line: dict[str, Any], *, now: dt.datetime) -> tuple[str, str | None]:
    refund = state.load(con, line["refund_id"])
    where = f"landing/{file} line {line['line']}"
    if refund is None:
        return "unknown_refund", f"no refund {line['refund_id']}"
    if line["currency"] != refund["currency"]:
        return "currency_mismatch", f"the bank says {line['currency']}, the refund is in {refund['currency']}"
    if line["amount_cents"] != refund["amount_cents"]:
        return "amount_mismatch", (f"the bank says {format_cents(line['amount_cents'], line['currency'])}, "
                                   f"the refund is {format_cents(refund['amount_cents'], refund['currency'])}")
    if refund["status"] == line["status"] and refund["executor"] == EXECUTOR:
        return "already_applied", f"refund {refund['refund_id']} is already {refund['status']}"
    if refund["status"] != SUBMITTED or refund["executor"] != EXECUTOR:
        return "not_submitted", (f"refund {refund['refund_id']} is {refund['status']}"
                                 f"{' via ' + refund['executor'] if refund['executor'] else ''}, not in a bank-transfer batch: check with the bank")
    reference = line["bank_reference"]
    if line["status"] == PAID:
        state.transition(con, refund["refund_id"], expect=(SUBMITTED,), to=PAID, actor=BANK_ACTOR, action="paid",
                         why=f"{where}: the bank paid it (reference {reference or 'none'})", now=now,
                         changes={"completed_at": line["executed_at"] or now, "provider_reference": reference,
                                  "provider_status": PAID, "last_error": None})
    else:
        state.transition(con, refund["refund_id"], expect=(SUBMITTED,), to=FAILED, actor=BANK_ACTOR, action="fail",
                         why=f"{where}: the bank could not pay it: {line['detail'] or 'no detail'}", now=now,
                         changes={"completed_at": line["executed_at"] or now, "provider_reference": reference,
                                  "provider_status": FAILED, "last_error": line["detail"]})
    return "applied", line["detail"]
