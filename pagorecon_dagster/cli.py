"""`pagorecon`: the demo, and runs over store x date windows through Dagster (README.md,
Running it on your own data)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import os
import sys
from pathlib import Path

from pagorecon_dagster import progress
from pagorecon_dagster.config import CONFIG_FILE, ConfigError, Settings, home_dir, load_settings
from pagorecon_dagster.warehouse.duckdb import WarehouseMissing

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_UNREADABLE_FILES = 0, 1, 2, 3
SANDBOX_MARKER = ".pagorecon-sandbox"


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _instance(settings: Settings):
    """DAGSTER_HOME when set (production: dagster.yaml with PostgreSQL), else a local instance
    under PAGORECON_HOME/dagster so runs show up in `dagster dev`."""
    import dagster as dg

    if not os.environ.get("DAGSTER_HOME"):
        local = settings.home / "dagster"
        local.mkdir(parents=True, exist_ok=True)
        if not (local / "dagster.yaml").exists():
            # written whole then renamed: a second process starting now never reads half a file
            draft = local / f".dagster.yaml.{os.getpid()}"
            draft.write_text("# Local runs of `pagorecon`: SQLite storage in this folder.\ntelemetry:\n  enabled: false\n")
            os.replace(draft, local / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(local)
    # Storages create their tables on first use; two first runs at once would both create them
    # ("table secondary_indexes already exists"), so the first use is one process at a time.
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(OSError):  # a DAGSTER_HOME we may not write to: its storage is set up already
            fcntl.flock(stack.enter_context(open(Path(os.environ["DAGSTER_HOME"]) / ".storage-init.lock", "a")), fcntl.LOCK_EX)
        instance = dg.DagsterInstance.get()
        instance.get_runs(limit=1)
        instance.event_log_storage.get_maximum_record_id()
        instance.schedule_storage.all_instigator_state()
    return instance


def run_window(settings: Settings, start: dt.date, end: dt.date, stores: list[str] | None = None) -> int:
    """Materialize every asset for stores x start..end; one Dagster run per block of neighbouring
    stores (all stores, or one store: one run), then one run per report job over the dates and
    store x months those runs reconciled, then one per email job over the same. Returns the
    process exit code."""
    from pagorecon_dagster.definitions import MAIN_JOB, build_definitions
    from pagorecon_dagster.delivery.jobs import email_runs
    from pagorecon_dagster.jobs import following_report_runs
    from pagorecon_dagster.partitions import contiguous_store_blocks, range_tags
    from pagorecon_dagster.resources import warehouse_from_environment

    unknown = sorted(set(stores or []) - set(settings.store_ids))
    if unknown:
        print(f"pagorecon: unknown store(s) {', '.join(unknown)}; pagorecon.yaml has {', '.join(settings.store_ids)}", file=sys.stderr)
        return EXIT_USAGE
    if start > end:
        print(f"pagorecon: --start {start} is after --end {end}", file=sys.stderr)
        return EXIT_USAGE
    if start < settings.start_date:
        print(f"pagorecon: --start {start} is before start_date {settings.start_date} in pagorecon.yaml", file=sys.stderr)
        return EXIT_USAGE
    selected = stores or settings.store_ids
    for folder in (settings.landing, settings.reports, settings.archive):
        folder.mkdir(parents=True, exist_ok=True)
    definitions = build_definitions(settings)
    instance = _instance(settings)
    run_ids = []
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    blocks = contiguous_store_blocks(settings, selected)
    runs = [(f"stores {', '.join(block)}, {start}..{end}", MAIN_JOB, range_tags(block, start, end)) for block in blocks]
    for block in blocks:  # the reports per date are the same for every block: written once
        for job_name, tags in following_report_runs(definitions, block, start, end):
            if not any(run[1:] == (job_name, tags) for run in runs):
                span = f"{tags['dagster/asset_partition_range_start']}..{tags['dagster/asset_partition_range_end']}"
                runs.append((f"{job_name} {span}", job_name, tags))
    # then each written report to its recipients (pagorecon.yaml `email:`)
    for job_name, tags in email_runs([run[1:] for run in runs]) if settings.email.recipients else ():
        runs.append((f"{job_name} {tags['dagster/asset_partition_range_start']}..{tags['dagster/asset_partition_range_end']}",
                     job_name, tags))
    with progress.shown():
        for label, job_name, tags in runs:
            progress.step(f"run: {label}")
            result = definitions.resolve_job_def(job_name).execute_in_process(
                instance=instance, tags=tags, run_config=quiet, raise_on_error=False
            )
            run_ids.append(result.run_id)
            if not result.success:
                failure = next((e for e in result.all_events if e.is_failure), None)
                detail = failure.event_specific_data.error.message if failure and getattr(failure.event_specific_data, "error", None) else ""
                print(f"pagorecon: run {result.run_id} failed. {detail}".rstrip(), file=sys.stderr)
                return EXIT_RUN_FAILED
    with warehouse_from_environment(settings).warehouse() as con:
        return _summary(con, settings, selected, start, end, run_ids)


def _summary(con, settings: Settings, stores: list[str], start: dt.date, end: dt.date, run_ids: list[str]) -> int:
    by_status = con.execute(
        # Reasons are listed for the statuses a reason tells apart (several reasons) that are matched
        # or need a person; refund candidates are the status catalog's (reconciliation/catalog.py).
        """WITH told_apart AS (
               SELECT status FROM status_catalog WHERE status_group IN ('matched', 'needs_action') GROUP BY status HAVING count(*) > 1
           )
           SELECT i.status, count(*), count(*) FILTER (WHERE k.refund_candidate),
                  string_agg(DISTINCT i.reason, ', ' ORDER BY i.reason) FILTER (WHERE i.status IN (FROM told_apart) AND i.reason IS NOT NULL)
           FROM recon_items AS i
           LEFT JOIN status_catalog AS k ON k.status = i.status AND k.reason IS NOT DISTINCT FROM i.reason
           WHERE list_contains(?, i.store_id) AND i.business_date BETWEEN ? AND ? GROUP BY i.status ORDER BY i.status""",
        [stores, start, end],
    ).fetchall()
    reasons = dict(
        con.execute(
            """SELECT status || '/' || reason, count(*) FROM recon_items
               WHERE list_contains(?, store_id) AND business_date BETWEEN ? AND ? AND reason IS NOT NULL GROUP BY ALL""",
            [stores, start, end],
        ).fetchall()
    )
    quarantined = con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    new_quarantined = con.execute(
        "SELECT coalesce(sum(rows_quarantined), 0) FROM ingested_files WHERE list_contains(?, run_id)", [run_ids]
    ).fetchone()[0]
    failed = con.execute(
        "SELECT file, error FROM ingested_files WHERE status = 'failed' AND list_contains(?, run_id) ORDER BY file",
        [run_ids],
    ).fetchall()
    print(f"\nReconciled {', '.join(stores)} from {start} to {end}:")
    width = max([len(s) for s, *_ in by_status] + [6])
    for status, items, refundable, shown_reasons in by_status:
        notes = [f"{reason} {reasons[f'{status}/{reason}']}" for reason in (shown_reasons or "").split(", ") if reason]
        if refundable:
            notes.append(f"{refundable} refund candidate{'s' if refundable != 1 else ''}")
        extra = f"  ({'; '.join(notes)})" if notes else ""
        print(f"  {status:<{width}}  {items:>8,}{extra}")
    if not by_status:
        print("  (no items in this window)")
    print(f"Quarantined rows: {new_quarantined:,} new, {quarantined:,} in all (table `quarantine`).")
    alerts = con.execute(
        """SELECT kind, count(*) FROM alerts WHERE resolved_at IS NULL AND list_contains(?, store_id)
           AND business_date BETWEEN ? AND ? GROUP BY kind ORDER BY kind""",
        [stores, start, end],
    ).fetchall()
    if alerts:
        print("Open alerts (table `alerts`): " + ", ".join(f"{kind} {n}" for kind, n in alerts))
    print(f"Warehouse: {settings.warehouse_path}")
    if failed:
        print("\nThese files could not be read; nothing of them was loaded:", file=sys.stderr)
        for file, error in failed:
            print(f"  landing/{file}: {error}", file=sys.stderr)
        return EXIT_UNREADABLE_FILES
    return EXIT_OK


def cmd_run(args) -> int:
    settings = load_settings(args.home)
    return run_window(settings, args.start, args.end, args.store)


def cmd_demo(args) -> int:
    from pagorecon_dagster.sandbox.generator import generate

    home = args.home or home_dir()
    if (home / CONFIG_FILE).exists() and not (home / SANDBOX_MARKER).exists():
        print(
            f"pagorecon: {home} already holds a pagorecon.yaml that the demo did not write; "
            "choose another folder with --home or PAGORECON_HOME.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    home.mkdir(parents=True, exist_ok=True)
    (home / SANDBOX_MARKER).write_text("written by `pagorecon demo`\n", encoding="utf-8")
    print(f"Writing sandbox data for {args.stores} stores x {args.days} days into {home} ...", file=sys.stderr)
    sandbox = generate(home, stores=args.stores, days=args.days, seed=args.seed)
    settings = load_settings(home)
    code = run_window(settings, sandbox.start, sandbox.end)
    if code in (EXIT_OK, EXIT_UNREADABLE_FILES):
        from pagorecon_dagster.refunds.demo import run_demo_refunds

        print()
        for line in run_demo_refunds(settings, _instance(settings)):
            print(line)
    print(
        "\nWhere to look:\n"
        f"  warehouse   {settings.warehouse_path}  (tables recon_items, recon_daily_summary, quarantine, ingested_files)\n"
        f"              python -c \"import duckdb; duckdb.connect('{settings.warehouse_path}', read_only=True).sql('FROM recon_items LIMIT 20').show()\"\n"
        f"  reports     {settings.reports}  (daily/, all_stores/, month_close/: HTML, CSV, XLSX)\n"
        f"  mailbox     {settings.mailbox}  ({len(list(settings.mailbox.glob('*.eml')))} emails to finance as .eml files; "
        "archive/reports/ keeps each version sent)\n"
        f"  landing     {settings.landing}\n"
        f"  Dagster UI  PAGORECON_HOME={home} DAGSTER_HOME={home / 'dagster'} dagster dev -w workspace.yaml"
    )
    # The sandbox plants unreadable files on purpose: the demo itself succeeded.
    return EXIT_OK if code in (EXIT_OK, EXIT_UNREADABLE_FILES) else code


def cmd_check_config(args) -> int:
    settings = load_settings(args.home)
    print(f"{settings.home / CONFIG_FILE}: OK, {len(settings.stores)} store(s): {', '.join(settings.store_ids)}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pagorecon", description="Reconcile PagoEfectivo payments against store orders.")
    parser.add_argument("--home", type=lambda p: Path(p).expanduser().resolve(), default=None,
                        help="state folder (default: $PAGORECON_HOME, else ~/.pagorecon)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="write sandbox data, run the whole pipeline, say where to look")
    demo.add_argument("--stores", type=int, default=3)
    demo.add_argument("--days", type=int, default=21)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="ingest landing/ and reconcile store x date partitions")
    run.add_argument("--start", type=_date, required=True, help="first Lima business date YYYY-MM-DD")
    run.add_argument("--end", type=_date, required=True, help="last Lima business date YYYY-MM-DD")
    run.add_argument("--store", action="append", default=None, help="store id (repeatable; default: all stores)")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate pagorecon.yaml")
    check.set_defaults(func=cmd_check_config)

    # Domains with commands of their own: `pagorecon refunds ...`, `pagorecon webhook ...`.
    from pagorecon_dagster.ingestion import cli as ingestion_cli
    from pagorecon_dagster.pagoefectivo import cli as pagoefectivo_cli
    from pagorecon_dagster.refunds import cli as refunds_cli
    from pagorecon_dagster.warehouse import cli as warehouse_cli

    for domain_cli in (refunds_cli, pagoefectivo_cli, ingestion_cli, warehouse_cli):
        domain_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"pagorecon: bad configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WarehouseMissing as exc:
        print(f"pagorecon: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
