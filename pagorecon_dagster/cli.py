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
from pagorecon_dagster.orchestration import nothing_new
from pagorecon_dagster.warehouse.duckdb import WarehouseMissing, connect

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_UNREADABLE_FILES = 0, 1, 2, 3
EXIT_DEGRADED = 1   # `pagorecon status`: some store is degraded
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

    from pagorecon_dagster.orchestration.event_log import EARLIER_LOCAL_DAGSTER_YAML, EVENT_BATCH_SIZE, LOCAL_DAGSTER_YAML

    if not os.environ.get("DAGSTER_HOME"):
        local = settings.home / "dagster"
        local.mkdir(parents=True, exist_ok=True)
        config = local / "dagster.yaml"
        # a new home, or one whose file an earlier version wrote (and nobody edited): this version's
        if not config.exists() or config.read_text(encoding="utf-8") == EARLIER_LOCAL_DAGSTER_YAML:
            # written whole then renamed: a second process starting now never reads half a file
            draft = local / f".dagster.yaml.{os.getpid()}"
            draft.write_text(LOCAL_DAGSTER_YAML, encoding="utf-8")
            os.replace(draft, config)
        os.environ["DAGSTER_HOME"] = str(local)
    # A step's asset events (one per partition) written together: by PostgreSQL's event log, and by
    # the local one above (orchestration/event_log.py).
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
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


# Before a run starts, Dagster writes one "planned" event per asset and partition (on SQLite about
# 10 ms each: a year of 10 stores waited 90 s before its first step). Over a backfill of more
# partitions than this it writes one per asset naming the partitions; the price, in the Dagster UI
# only, is that the partitions of such a run that failed show as missing rather than failed (the
# exit code and `pagorecon status` still say it failed).
PLANNED_EVENTS_PER_ASSET_FROM = 100
_PLANNED_EVENTS_SWITCH = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


@contextlib.contextmanager
def _planned_events_per_asset(partitions: int):
    if partitions <= PLANNED_EVENTS_PER_ASSET_FROM or os.environ.get(_PLANNED_EVENTS_SWITCH) is not None:
        yield
        return
    os.environ[_PLANNED_EVENTS_SWITCH] = "1"
    try:
        yield
    finally:
        os.environ.pop(_PLANNED_EVENTS_SWITCH, None)


def run_window(settings: Settings, start: dt.date, end: dt.date, stores: list[str] | None = None, *, force: bool = False) -> int:
    """Materialize every asset for stores x start..end; one Dagster run per block of neighbouring
    stores (all stores, or one store: one run), then one run per report job over the dates and
    store x months those runs reconciled, then one per email job over the same, then one run that rewrites reports/index.html.
    Starts none when nothing is new since the last complete run of the window, unless `force`
    (orchestration/nothing_new.py). Returns the process exit code."""
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
    started = nothing_new.now_lima()
    record = None if force else nothing_new.recorded(settings, selected, start, end, started)
    if record is not None:
        with connect(settings.lake, read_only=True) as con:
            if nothing_new.still_current(con, record):
                print(f"Nothing new since the run of {', '.join(selected)}, {start}..{end} that finished {record.finished_at}: "
                      "landing/, pagorecon.yaml, the code, the warehouse and reports/ are as it left them, in the same Lima hour. "
                      "No run started (--force runs anyway).")
                return _summary(con, settings, selected, start, end, [])
    # Dagster and the definitions load only for a run (a few seconds of a run with nothing new)
    from pagorecon_dagster.definitions import MAIN_JOB, build_definitions
    from pagorecon_dagster.delivery.jobs import email_runs
    from pagorecon_dagster.jobs import INDEX_JOB, following_report_runs
    from pagorecon_dagster.partitions import contiguous_store_blocks, range_tags
    from pagorecon_dagster.resources import warehouse_from_environment
    for folder in (settings.landing, settings.reports, settings.archive):
        folder.mkdir(parents=True, exist_ok=True)
    inputs = nothing_new.inputs_fingerprint(settings, selected, start, end, started)
    with warehouse_from_environment(settings).warehouse() as con:
        before = nothing_new.current_snapshot(con)
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
    runs.append((INDEX_JOB, INDEX_JOB, {}))  # last: it links every report the runs before it wrote
    with progress.shown(), _planned_events_per_asset(len(selected) * ((end - start).days + 1)):
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
                nothing_new.forget(settings, selected, start, end)
                return EXIT_RUN_FAILED
    with warehouse_from_environment(settings).warehouse() as con:
        code = _summary(con, settings, selected, start, end, run_ids)
        if code == EXIT_OK:
            nothing_new.remember(con, settings, selected, start, end, inputs, before, run_ids)
        else:
            nothing_new.forget(settings, selected, start, end)
        return code


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
    print(f"Warehouse: {settings.lake}")
    if failed:
        print("\nThese files could not be read; nothing of them was loaded:", file=sys.stderr)
        for file, error in failed:
            print(f"  landing/{file}: {error}", file=sys.stderr)
        return EXIT_UNREADABLE_FILES
    return EXIT_OK


def cmd_run(args) -> int:
    settings = load_settings(args.home)
    return run_window(settings, args.start, args.end, args.store, force=args.force)


def cmd_demo(args) -> int:
    from pagorecon_dagster.reports.index import INDEX_FILE
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
    print(f"Writing sandbox data for {args.stores} stores (+ a PrestaShop store by mapping) x {args.days} days into {home} ...",
          file=sys.stderr)
    # One more store on top of --stores: piura_presta, read from PrestaShop's own export by mapping.
    sandbox = generate(home, stores=args.stores, days=args.days, seed=args.seed, mapped_store=True)
    _demo_woocommerce_store(home)
    _demo_shopify_pull(home, sandbox.start, args)
    settings = load_settings(home)
    code = run_window(settings, sandbox.start, sandbox.end)
    if code in (EXIT_OK, EXIT_UNREADABLE_FILES):
        from pagorecon_dagster.refunds.demo import run_demo_refunds

        print()
        for line in run_demo_refunds(settings, _instance(settings)):
            print(line)
        # Health as finance would check it the morning after the sandbox's last day.
        as_of = sandbox.end + dt.timedelta(days=1)
        print(f"\n$ pagorecon status --as-of {as_of}")
        cmd_status(argparse.Namespace(home=home, store=None, as_of=as_of))
    print(
        "\nWhere to look:\n"
        f"  warehouse   {settings.lake}  (tables recon_items, recon_daily_summary, quarantine, ingested_files)\n"
        f"              PAGORECON_HOME={home} pagorecon sql \"SELECT * FROM recon_items LIMIT 20\"\n"
        f"  start here  {settings.reports / INDEX_FILE}  (latest day, what needs a person, every report by month)\n"
        f"  reports     {settings.reports}  (daily/, all_stores/, month_close/: HTML, CSV, XLSX)\n"
        f"  mailbox     {settings.mailbox}  ({len(list(settings.mailbox.glob('*.eml')))} emails to finance as .eml files; "
        "archive/reports/ keeps each version sent)\n"
        f"  landing     {settings.landing}\n"
        f"  Dagster UI  PAGORECON_HOME={home} DAGSTER_HOME={home / 'dagster'} dagster dev -w workspace.yaml"
    )
    # The sandbox plants unreadable files on purpose: the demo itself succeeded.
    return EXIT_OK if code in (EXIT_OK, EXIT_UNREADABLE_FILES) else code


def _demo_shopify_pull(home: Path, start: dt.date, args) -> None:
    """One more demo store whose orders come from a Shopify API sandbox on loopback, pulled into landing/."""
    from pagorecon_dagster.resources import ShopifyApi
    from pagorecon_dagster.sandbox.shopify_api import DEMO_STORE, ShopifySandbox, add_demo_shop
    from pagorecon_dagster.stores.shopify import pull_store_orders, token_env

    demo = add_demo_shop(home, stores=args.stores, days=args.days, start=start, seed=args.seed)
    with ShopifySandbox([demo.shop]) as shopify:
        api = ShopifyApi(tokens={token_env(DEMO_STORE["id"]): demo.shop.token}, api_url=shopify.url)
        landed = pull_store_orders(load_settings(home), DEMO_STORE["id"], api)
    where = landed.relative_to(home).as_posix() if landed else "nothing new"
    print(f"Pulled {DEMO_STORE['id']}'s orders from a Shopify Admin API sandbox at {shopify.url}: {where}", file=sys.stderr)


def cmd_orders_pull(args) -> int:
    """`pagorecon orders pull`: the orders updated since the last pull of each API store (Shopify, WooCommerce)."""
    import logging

    from pagorecon_dagster.resources import shopify_from_environment
    from pagorecon_dagster.stores import shopify, woocommerce

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    settings = load_settings(args.home)
    on_shopify = [s.id for s in shopify.api_stores(settings)]
    on_woocommerce = [s.id for s in settings.stores if s.source == woocommerce.SOURCE]
    known = on_shopify + on_woocommerce
    wrong = sorted(set(args.store or []) - set(known))
    if wrong or not known:
        print(f"pagorecon: {', '.join(wrong) or 'no store'}: not a store with `source: {shopify.SOURCE}` or "
              f"`source: {woocommerce.SOURCE}` in pagorecon.yaml (those are: {', '.join(known) or 'none'})", file=sys.stderr)
        return EXIT_USAGE
    selected = args.store or known
    code = EXIT_OK
    shopify_selected = [s for s in selected if s in on_shopify]
    if shopify_selected:
        for outcome in shopify.pull_stores(settings, shopify_from_environment(), shopify_selected):
            if outcome.error:
                print(f"pagorecon: {outcome.error}", file=sys.stderr)
                code = EXIT_RUN_FAILED
            else:
                where = outcome.path.relative_to(settings.home).as_posix() if outcome.path else "nothing new since the last pull"
                print(f"{outcome.store_id}: {where}")
    woocommerce_selected = [s for s in selected if s in on_woocommerce]
    if woocommerce_selected and _pull_woocommerce(settings, woocommerce_selected) != EXIT_OK:
        code = EXIT_RUN_FAILED
    return code


def _demo_woocommerce_store(home: Path) -> None:
    """One demo store sells on WooCommerce: its orders are pulled from a sandbox shop into landing/."""
    from pagorecon_dagster.resources import WooCommerceApi
    from pagorecon_dagster.sandbox.woocommerce_api import DEMO_STORE, demo_shop
    from pagorecon_dagster.stores.woocommerce import env_names, pull_woocommerce_orders

    shop = demo_shop(home, DEMO_STORE)
    if shop is None:
        return
    # The sandbox shop's key, given to the resource directly, as the demo does for every sandbox.
    sandbox_key = WooCommerceApi(variables=dict(zip(env_names(DEMO_STORE), (shop.consumer_key, shop.consumer_secret))))
    try:
        landed = pull_woocommerce_orders(load_settings(home), DEMO_STORE, sandbox_key)
    finally:
        shop.stop()
    where = landed.relative_to(home) if landed else "landing/ (already there)"
    print(f"{DEMO_STORE} sells on WooCommerce: its orders were pulled from a sandbox shop into {where}", file=sys.stderr)


def cmd_check_config(args) -> int:
    settings = load_settings(args.home)
    print(f"{settings.home / CONFIG_FILE}: OK, {len(settings.stores)} store(s): {', '.join(settings.store_ids)}")
    return EXIT_OK


def cmd_retention(args) -> int:
    from pagorecon_dagster import retention
    from pagorecon_dagster.ingestion.cli import operator
    from pagorecon_dagster.warehouse.duckdb import connect

    settings = load_settings(args.home)
    today = args.today or retention.lima_today()
    with connect(settings.lake, read_only=args.dry_run) as con:
        done = retention.apply(con, settings, today, by=operator()) if args.apply else retention.plan(con, settings, today)
    for line in retention.report(done, applied=args.apply):
        print(line)
    return EXIT_OK


def _pull_woocommerce(settings: Settings, store_ids: list[str]) -> int:
    from pagorecon_dagster.resources import woocommerce_from_environment
    from pagorecon_dagster.stores.woocommerce import MissingWooCredentials, WooCommerceError, pull_woocommerce_orders

    code, resource = EXIT_OK, woocommerce_from_environment()
    for store_id in store_ids:
        try:
            landed = pull_woocommerce_orders(settings, store_id, resource)
        except (MissingWooCredentials, WooCommerceError) as exc:
            print(f"pagorecon: {exc}", file=sys.stderr)
            code = EXIT_RUN_FAILED
            continue
        print(f"{store_id}: {landed.relative_to(settings.home) if landed else 'no changed orders; nothing landed'}")
    return code


def cmd_status(args) -> int:
    from pagorecon_dagster.orchestration.health import assess, knows_the_rules, lima_today, status_lines
    from pagorecon_dagster.resources import warehouse_from_environment

    settings = load_settings(args.home)
    unknown = sorted(set(args.store or []) - set(settings.store_ids))
    if unknown:
        print(f"pagorecon status: unknown store(s) {', '.join(unknown)}; pagorecon.yaml has {', '.join(settings.store_ids)}", file=sys.stderr)
        return EXIT_USAGE
    today = args.as_of or lima_today()
    warehouse = warehouse_from_environment(settings)
    with warehouse.warehouse(read_only=True) as con:
        upgrade = not knows_the_rules(con)
    if upgrade:  # opening it for writing once applies this version's schema
        with warehouse.warehouse():
            pass
    with warehouse.warehouse(read_only=True) as con:
        stores = assess(con, _instance(settings), settings, today)
    stores = [s for s in stores if not args.store or s.store_id in args.store]
    limits = settings.health
    print(f"Health as of {today} (Lima); lags in Peru business days before it, allowed: statements "
          f"{limits.statement_lag_business_days}, reconciliation {limits.reconcile_lag_business_days} (pagorecon.yaml `health`).")
    for line in status_lines(stores):
        print(f"  {line}")
    degraded = [s.store_id for s in stores if s.degraded]
    print(f"{len(degraded)} of {len(stores)} store(s) degraded{': ' + ', '.join(degraded) if degraded else ''}.")
    return EXIT_DEGRADED if degraded else EXIT_OK


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
    run.add_argument("--force", action="store_true",
                     help="run even when nothing is new since the last complete run of the window (README: Nothing new)")
    run.set_defaults(func=cmd_run)

    keep = sub.add_parser("retention", help="list (--dry-run) or archive and remove (--apply) what is past its retention period")
    mode = keep.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="list what --apply would remove; change nothing")
    mode.add_argument("--apply", action="store_true", help="archive or remove it, and record it in retention_runs")
    keep.add_argument("--today", type=_date, default=None, help="count the periods back from this Lima date (default: today)")
    keep.set_defaults(func=cmd_retention)

    orders = sub.add_parser("orders", help="orders pulled from store APIs")
    orders_sub = orders.add_subparsers(dest="orders_command", required=True)
    pull = orders_sub.add_parser("pull", help="pull the orders updated since the last pull into landing/orders/<store_id>/")
    pull.add_argument("--store", action="append", default=None,
                      help="store id (repeatable; default: every store with `source: shopify_api` or `woocommerce_api`)")
    pull.set_defaults(func=cmd_orders_pull)

    check = sub.add_parser("check-config", help="validate pagorecon.yaml")
    check.set_defaults(func=cmd_check_config)



    status = sub.add_parser("status", help="per store: last run, statement and reconciliation lag, open alerts, refunds; "
                            "exit 0 healthy, 1 degraded")
    status.add_argument("--store", action="append", default=None, help="store id (repeatable; default: all stores)")
    status.add_argument("--as-of", type=_date, default=None, help="judge as of this Lima date YYYY-MM-DD (default: today)")
    status.set_defaults(func=cmd_status)

    # Domains with commands of their own: `pagorecon refunds ...`, `pagorecon webhook ...`, `pagorecon diff`.
    from pagorecon_dagster.ingestion import cli as ingestion_cli
    from pagorecon_dagster.pagoefectivo import cli as pagoefectivo_cli
    from pagorecon_dagster.reconciliation import cli as reconciliation_cli
    from pagorecon_dagster.refunds import cli as refunds_cli
    from pagorecon_dagster.warehouse import cli as warehouse_cli

    for domain_cli in (refunds_cli, pagoefectivo_cli, ingestion_cli, warehouse_cli, reconciliation_cli):
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
