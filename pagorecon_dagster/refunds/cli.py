"""`pagorecon refunds list | show | approve | reject | set-account | verify-audit | sandbox-provider`.

What a person reads here has personal data masked (documents, accounts, emails)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import Any
from zoneinfo import ZoneInfo

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.core.lima import LIMA_TZ
from pagorecon_dagster.core.masking import mask_digits, mask_text
from pagorecon_dagster.core.money import format_cents
from pagorecon_dagster.refunds import approval, audit, state
from pagorecon_dagster.warehouse.duckdb import connect

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def register(subparsers) -> None:
    refunds = subparsers.add_parser("refunds", help="review, approve and reject refunds; verify the audit log")
    sub = refunds.add_subparsers(dest="refunds_command", required=True)

    listing = sub.add_parser("list", help="refunds, newest first")
    listing.add_argument("--status", choices=state.STATUSES, help="only refunds in this status")
    listing.add_argument("--store", help="only this store")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="one refund, its checks and its audit trail")
    show.add_argument("refund_id")
    show.set_defaults(func=cmd_show)

    for name, func, helptext, note_required in (
        ("approve", cmd_approve, "approve a refund awaiting approval, as your own account on the approvers roster "
                                 "(not its requester, not who set its account)", False),
        ("reject", cmd_reject, "reject a refund awaiting approval, or withdraw an approved one not yet sent", True),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("refund_id")
        p.add_argument("--note", required=note_required, default=None, help="why (recorded in the audit log)")
        _refuse_by(p)
        p.set_defaults(func=func)

    account = sub.add_parser("set-account", help="record the payer's bank account (CCI); an approved refund waits for approval again")
    account.add_argument("refund_id")
    account.add_argument("--account", required=True, help="the payer's 20-digit CCI")
    account.add_argument("--note", default=None)
    _refuse_by(account)
    account.set_defaults(func=cmd_set_account)

    verify = sub.add_parser("verify-audit", help="check the audit log's hash chain; exit 1 naming the first bad entry")
    verify.set_defaults(func=cmd_verify_audit)

    sandbox = sub.add_parser("sandbox-provider", help="run the sandbox refund provider on this machine (demo)")
    sandbox.add_argument("--port", type=int, default=8789)
    sandbox.set_defaults(func=cmd_sandbox_provider)


def _refuse_by(parser) -> None:
    # Kept only to refuse it with a reason: who decides is the account running the command.
    parser.add_argument("--by", default=None, help=argparse.SUPPRESS)


def _identity(args) -> approval.Identity | None:
    """The operating-system account running this command; a typed `--by` is refused."""
    if args.by is not None:
        print("pagorecon: --by is not accepted: who decides is the operating-system account running this command "
              f"(here {approval.Identity.from_os().user!r}), which must be on the `approvers` roster in pagorecon.yaml. "
              "Run the command as your own account, without --by.", file=sys.stderr)
        return None
    return approval.Identity.from_os()


def _lima(value: dt.datetime | None) -> str:
    return value.astimezone(ZoneInfo(LIMA_TZ)).strftime("%Y-%m-%d %H:%M") if value else ""


def _money(refund: dict[str, Any]) -> str:
    return format_cents(refund["amount_cents"], refund["currency"])


def cmd_list(args) -> int:
    settings = load_settings(args.home)
    where, params = [], []
    if args.status:
        where.append("status = ?")
        params.append(args.status)
    if args.store:
        where.append("store_id = ?")
        params.append(args.store)
    sql = "SELECT * FROM refunds" + (f" WHERE {' AND '.join(where)}" if where else "")
    with connect(settings.lake, read_only=True) as con:
        found = state.rows(con, sql + " ORDER BY requested_at DESC, refund_id LIMIT ?", [*params, args.limit])
    if not found:
        print("no refunds" + (f" with status {args.status}" if args.status else ""))
        return EXIT_OK
    header = ("refund_id", "status", "amount", "reason", "cip", "order", "beneficiary", "requested_by", "approved_by", "requested (Lima)")
    table = [header] + [
        (r["refund_id"], r["status"] + (f" ({r['rejection_reason']})" if r["rejection_reason"] else ""), _money(r), r["reason"],
         r["cip"], r["order_id"] or "", mask_digits(r["beneficiary_document"]), mask_text(r["requested_by"]),
         mask_text(r["approved_by"] or ""), _lima(r["requested_at"]))
        for r in found
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    return EXIT_OK


def cmd_show(args) -> int:
    settings = load_settings(args.home)
    with connect(settings.lake, read_only=True) as con:
        refund = state.load(con, args.refund_id)
        trail = audit.entries(con, entity_id=args.refund_id) if refund else []
    if refund is None:
        print(f"pagorecon: no refund {args.refund_id!r}", file=sys.stderr)
        return EXIT_REFUSED
    fields = [
        ("refund", refund["refund_id"]), ("store", refund["store_id"]), ("order", refund["order_id"] or ""),
        ("cip", refund["cip"]), ("amount", _money(refund)), ("reason", refund["reason"]), ("source", refund["source"]),
        ("status", refund["status"]), ("rejection", refund["rejection_reason"] or ""),
        ("why rejected", mask_text(refund["rejection_detail"] or "")),
        ("beneficiary document", mask_digits(refund["beneficiary_document"])),
        ("beneficiary account", mask_digits(refund["beneficiary_account"])),
        ("requested by", mask_text(refund["requested_by"])), ("requested at", _lima(refund["requested_at"])),
        ("approved by", mask_text(refund["approved_by"] or "")), ("approved at", _lima(refund["approved_at"])),
        ("executor", refund["executor"] or ""), ("submitted at", _lima(refund["submitted_at"])),
        ("attempts", str(refund["attempts"])), ("payout batch", refund["payout_batch"] or ""),
        ("provider reference", refund["provider_reference"] or ""), ("completed at", _lima(refund["completed_at"])),
        ("last problem", mask_text(refund["last_error"] or "")),
    ]
    for label, value in fields:
        if value:
            print(f"{label + ':':<22}{value}")
    print("\naudit trail (Lima time):")
    for entry in trail:
        print(f"  #{entry['seq']} {_lima(entry['logged_at'])} {mask_text(entry['actor'])} {entry['action']}: {mask_text(entry['why'] or '')}")
    return EXIT_OK


def _decided(decision: approval.Decision) -> int:
    print(mask_text(decision.message), file=sys.stdout if decision.ok else sys.stderr)
    return EXIT_OK if decision.ok else EXIT_REFUSED


def cmd_approve(args) -> int:
    actor = _identity(args)
    if actor is None:
        return EXIT_USAGE
    settings = load_settings(args.home)
    with connect(settings.lake) as con:
        return _decided(approval.approve(con, settings, args.refund_id, actor=actor, note=args.note, now=state.now_utc()))


def cmd_reject(args) -> int:
    actor = _identity(args)
    if actor is None:
        return EXIT_USAGE
    settings = load_settings(args.home)
    with connect(settings.lake) as con:
        return _decided(approval.reject(con, settings, args.refund_id, actor=actor, note=args.note, now=state.now_utc()))


def cmd_set_account(args) -> int:
    actor = _identity(args)
    if actor is None:
        return EXIT_USAGE
    settings = load_settings(args.home)
    with connect(settings.lake) as con:
        return _decided(approval.set_account(con, settings, args.refund_id, account=args.account, actor=actor, note=args.note,
                                             now=state.now_utc()))


def cmd_verify_audit(args) -> int:
    settings = load_settings(args.home)
    with connect(settings.lake, read_only=True) as con:
        result = audit.verify(con, audit.Anchor.of_home(settings.home),
                              unaudited=state.UNAUDITED_COLUMNS, personal=state.PERSONAL_COLUMNS)
    report = result.chain
    for note in result.notes:
        print(f"audit_log: {note}")
    if result.ok:
        print(f"audit_log: {report.entries} entries, chain intact and anchored, every refund as audited (head {report.head[:16]}...)")
        return EXIT_OK
    if not report.ok:
        print(f"audit_log: entry {report.bad_seq} is bad: {mask_text(report.problem)}", file=sys.stderr)
        print(f"the {report.entries} entries before it are intact", file=sys.stderr)
    shown = 20
    for problem in result.problems[:shown]:
        print(f"audit_log: {mask_text(problem)}", file=sys.stderr)
    if len(result.problems) > shown:
        print(f"audit_log: ... and {len(result.problems) - shown} more", file=sys.stderr)
    return EXIT_REFUSED


def cmd_sandbox_provider(args) -> int:
    from pagorecon_dagster.refunds.sandbox_provider import SandboxRefundProvider

    with SandboxRefundProvider(port=args.port) as provider:
        print("Sandbox refund provider running. In the shell that runs pagorecon:\n"
              f"  export PAGORECON_REFUND_API_URL={provider.url}\n"
              f"  export PAGORECON_REFUND_API_KEY={provider.api_key}\n"
              "Ctrl-C stops it (its ledger lives in memory).", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print(f"\nstopped after {len(provider.ledger())} payout(s)")
    return EXIT_OK
