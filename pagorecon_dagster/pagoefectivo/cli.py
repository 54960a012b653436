"""`pagorecon webhook serve` and `pagorecon pagoefectivo pull | sandbox | notify`."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
from pathlib import Path

from pagorecon_dagster.config import Settings, load_settings
from pagorecon_dagster.pagoefectivo import credentials

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def register(subparsers) -> None:
    webhook = subparsers.add_parser("webhook", help="the PagoEfectivo notification endpoint")
    webhook_sub = webhook.add_subparsers(dest="webhook_command", required=True)
    serve = webhook_sub.add_parser("serve", help="receive notifications into landing/ (POST /notifications/<store_id>)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: put a reverse proxy in front)")
    serve.add_argument("--port", type=int, default=8787)
    serve.set_defaults(func=cmd_webhook_serve)

    pe = subparsers.add_parser("pagoefectivo", help="the PagoEfectivo API: pull CIPs, run the sandbox")
    pe_sub = pe.add_subparsers(dest="pagoefectivo_command", required=True)
    pull = pe_sub.add_parser("pull", help="pull /v1/cips/search for a date range into landing/statements/<store_id>/")
    pull.add_argument("--start", type=_date, required=True, help="first Lima date YYYY-MM-DD")
    pull.add_argument("--end", type=_date, required=True, help="last Lima date YYYY-MM-DD")
    pull.add_argument("--store", action="append", default=None, help="store id (repeatable; default: all stores)")
    pull.set_defaults(func=cmd_pull)

    sandbox = pe_sub.add_parser("sandbox", help="run a PagoEfectivo sandbox on this machine (demo)")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8788)
    sandbox.add_argument("--cips", type=Path, action="append", default=[],
                         help="JSON file of CIPs to serve (a list or a /v1/cips/search reply); repeatable")
    sandbox.add_argument("--token-seconds", type=float, default=3600)
    sandbox.set_defaults(func=cmd_sandbox)

    notify = pe_sub.add_parser("notify", help="POST a notification body, signed with the store's secret key, to a webhook")
    notify.add_argument("--store", required=True)
    notify.add_argument("--url", default="http://127.0.0.1:8787", help="webhook base URL (default http://127.0.0.1:8787)")
    notify.add_argument("body", type=Path, help="file holding the JSON notification body")
    notify.set_defaults(func=cmd_notify)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)


def _stop_on_sigterm() -> None:
    """SIGTERM (systemd, docker stop) ends the server like Ctrl-C: requests in flight finish."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


def _api():
    """The `PagoEfectivoApi` resource, configured from this process's environment."""
    from pagorecon_dagster.resources import pagoefectivo_from_environment

    return pagoefectivo_from_environment()


def _unknown_stores(settings: Settings, stores: list[str] | None) -> list[str]:
    return sorted(set(stores or []) - set(settings.store_ids))


def cmd_webhook_serve(args) -> int:
    from pagorecon_dagster.pagoefectivo.webhook import make_server

    _setup_logging()
    settings = load_settings(args.home)
    try:
        server = make_server(settings, args.host, args.port, environ=_api().environ())
    except OSError as exc:
        print(f"pagorecon: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Receiving PagoEfectivo notifications at {server.url}/notifications/<store_id> "
          f"for {', '.join(settings.store_ids)}; writing into {settings.landing / 'statements'}. Ctrl-C stops.",
          file=sys.stderr)
    _stop_on_sigterm()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


def cmd_pull(args) -> int:
    from pagorecon_dagster.pagoefectivo.client import PagoEfectivoError
    from pagorecon_dagster.pagoefectivo.pull import pull_cips

    _setup_logging()
    settings = load_settings(args.home)
    unknown = _unknown_stores(settings, args.store)
    if unknown:
        print(f"pagorecon: unknown store(s) {', '.join(unknown)}; pagorecon.yaml has {', '.join(settings.store_ids)}", file=sys.stderr)
        return EXIT_USAGE
    if args.start > args.end:
        print(f"pagorecon: --start {args.start} is after --end {args.end}", file=sys.stderr)
        return EXIT_USAGE
    code = EXIT_OK
    api = _api()
    for store_id in args.store or settings.store_ids:
        try:
            result = pull_cips(settings, store_id, args.start, args.end, api=api)
        except credentials.MissingCredentials as exc:
            print(f"pagorecon: {exc}", file=sys.stderr)
            code = max(code, EXIT_USAGE)
            continue
        except PagoEfectivoError as exc:
            print(f"pagorecon: {exc}", file=sys.stderr)
            code = max(code, EXIT_FAILED)
            continue
        where = result.path.relative_to(settings.home).as_posix()
        state = "new" if result.written else "unchanged: already in landing/"
        print(f"{store_id}: {result.cips} CIP(s) -> {where} ({state})")
    if code == EXIT_OK:
        print(f"Next: pagorecon run --start {args.start} --end {args.end} ingests and reconciles them.")
    return code


def cmd_sandbox(args) -> int:
    from pagorecon_dagster.pagoefectivo.client import loads_exact
    from pagorecon_dagster.pagoefectivo.sandbox import PagoEfectivoSandbox, SandboxService

    settings = load_settings(args.home)
    cips = []
    for path in args.cips:
        try:
            doc = loads_exact(path.read_bytes())
        except (OSError, ValueError) as exc:
            print(f"pagorecon: --cips {path}: cannot read a JSON document: {exc}", file=sys.stderr)
            return EXIT_USAGE
        items = doc.get("data") if isinstance(doc, dict) else doc
        if not isinstance(items, list):
            print(f"pagorecon: --cips {path}: expected a list of CIPs or a /v1/cips/search reply", file=sys.stderr)
            return EXIT_USAGE
        cips.extend(items)
    services: dict[str, SandboxService] = {}
    api = _api()
    for store_id in settings.store_ids:
        values = {name: api.lookup(store_id, name) for name in (credentials.SERVICE_ID, credentials.ACCESS_KEY, credentials.SECRET_KEY)}
        if None in values.values():
            continue
        service_id = values[credentials.SERVICE_ID]
        services.setdefault(service_id, SandboxService(service_id, values[credentials.ACCESS_KEY], values[credentials.SECRET_KEY], cips))
    if not services:
        print("pagorecon: no store has PagoEfectivo credentials; set PAGORECON_PE_ACCESS_KEY and, per store, "
              "PAGORECON_PE_<STORE>_SECRET_KEY and PAGORECON_PE_<STORE>_SERVICE_ID (any values: the sandbox and the "
              "client read the same ones)", file=sys.stderr)
        return EXIT_USAGE
    sandbox = PagoEfectivoSandbox(services.values(), token_seconds=args.token_seconds, host=args.host, port=args.port)
    print(f"PagoEfectivo sandbox at {sandbox.url}: service(s) {', '.join(services)}, {len(cips)} CIP(s).\n"
          f"  export PAGORECON_PE_API_URL={sandbox.url}\n"
          f"  pagorecon pagoefectivo pull --start YYYY-MM-DD --end YYYY-MM-DD\nCtrl-C stops.", file=sys.stderr)
    _stop_on_sigterm()
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def cmd_notify(args) -> int:
    from pagorecon_dagster.pagoefectivo.sandbox import send_notification

    settings = load_settings(args.home)
    if _unknown_stores(settings, [args.store]):
        print(f"pagorecon: unknown store {args.store}; pagorecon.yaml has {', '.join(settings.store_ids)}", file=sys.stderr)
        return EXIT_USAGE
    secret = _api().lookup(args.store, credentials.SECRET_KEY)
    if secret is None:
        print(f"pagorecon: set {' or '.join(credentials.env_names(args.store, credentials.SECRET_KEY))}", file=sys.stderr)
        return EXIT_USAGE
    try:
        body = args.body.read_bytes()
    except OSError as exc:
        print(f"pagorecon: cannot read {args.body}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    url = f"{args.url.rstrip('/')}/notifications/{args.store}"
    import requests

    try:
        response = send_notification(url, body, secret)
    except requests.RequestException as exc:
        print(f"pagorecon: POST {url} failed: {type(exc).__name__}", file=sys.stderr)
        return EXIT_FAILED
    print(f"POST {url}: HTTP {response.status_code} {response.text.strip()}")
    return EXIT_OK if response.ok else EXIT_FAILED
