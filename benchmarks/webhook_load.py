"""Burst load on the PagoEfectivo notification endpoint: N signed notifications, all sent at once
on N connections, and what came back (answers, resets, files landed, time).

    python benchmarks/webhook_load.py --requests 500          # starts `pagorecon webhook serve` on a temp home
    python benchmarks/webhook_load.py --requests 500 --url http://127.0.0.1:8787 --store lima_shop
        (against a running server; the secret is read from PAGORECON_PE_<STORE>_SECRET_KEY)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pagorecon_dagster.pagoefectivo.sandbox import notification_body
from pagorecon_dagster.pagoefectivo.webhook import SIGNATURE_HEADER, sign

CONFIG = """\
stores:
  - {id: shop, name: Load Shop, order_format: canonical, reference_field: order_id, auto_refund_limit: "150.00"}
start_date: "2026-01-01"
"""


@dataclass
class Figures:
    requests: int
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    files: int | None = None

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    def summary(self) -> str:
        lat = sorted(self.latencies) or [0.0]
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
        return (f"{self.requests} concurrent notifications in {self.seconds:.2f} s: "
                f"answers {dict(sorted(self.statuses.items()))}, {self.errors} connection errors {self.error_kinds or ''}, "
                f"files landed {self.files if self.files is not None else 'n/a'}; "
                f"latency p50 {pct(0.5):.0f} ms, p99 {pct(0.99):.0f} ms, max {lat[-1] * 1000:.0f} ms")


async def _one(host: str, port: int, path: str, body: bytes, secret: str, gate: asyncio.Event, figures: Figures,
               statuses: collections.Counter, errors: collections.Counter) -> None:
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n{SIGNATURE_HEADER}: {sign(body, secret)}\r\nConnection: close\r\n\r\n"
               ).encode() + body
    await gate.wait()
    began = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionAbortedError("closed without an answer")
            statuses[int(status_line.split()[1])] += 1
            await reader.read()  # the rest of the answer, up to the server's close
        finally:
            writer.close()
    except (OSError, ValueError, IndexError) as exc:
        errors[type(exc).__name__] += 1
        return
    figures.latencies.append(time.perf_counter() - began)


async def _burst(url: str, store: str, secret: str, requests: int) -> Figures:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = f"/notifications/{store}"
    run = uuid.uuid4().hex[:8]
    figures, statuses, errors = Figures(requests), collections.Counter(), collections.Counter()
    gate = asyncio.Event()
    tasks = [
        asyncio.create_task(_one(host, port, path, notification_body(f"LOAD-{run}-{n:06d}", f"{90_000_000 + n}", f"L{n}", "10.00"),
                                 secret, gate, figures, statuses, errors))
        for n in range(requests)
    ]
    await asyncio.sleep(0)  # every task waits at the gate, then all go at once
    began = time.perf_counter()
    gate.set()
    await asyncio.gather(*tasks)
    figures.seconds = time.perf_counter() - began
    figures.statuses, figures.error_kinds = dict(statuses), dict(errors)
    figures.errors = sum(errors.values())
    return figures


def fire(url: str, store: str, secret: str, requests: int) -> Figures:
    return asyncio.run(_burst(url, store, secret, requests))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_against_cli(home: Path, requests: int = 500) -> Figures:
    """Start `pagorecon webhook serve` on `home` (created), fire the burst, count the files, stop it."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "pagorecon.yaml").write_text(CONFIG, encoding="utf-8")
    secret, port = uuid.uuid4().hex, _free_port()
    env = {**os.environ, "PAGORECON_PE_SHOP_SECRET_KEY": secret}
    server_log = open(home / "webhook.log", "w+b")  # a file, not a pipe: a full pipe would stall the server
    process = subprocess.Popen(
        [sys.executable, "-m", "pagorecon_dagster.cli", "--home", str(home), "webhook", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=server_log,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    server_log.seek(0)
                    raise RuntimeError(f"the webhook server did not start: {server_log.read().decode()[-2000:]}") from None
                time.sleep(0.05)
        figures = fire(f"http://127.0.0.1:{port}", "shop", secret, requests)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        server_log.close()
    folder = home / "landing" / "statements" / "shop" / "notifications"
    figures.files = len(list(folder.glob("*.json"))) if folder.exists() else 0
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="notifications sent at once (default 500)")
    parser.add_argument("--url", help="a running webhook's base URL (default: start one on a temp home)")
    parser.add_argument("--store", default="shop", help="store id (with --url)")
    args = parser.parse_args(argv)
    if args.url:
        variable = f"PAGORECON_PE_{args.store.upper()}_SECRET_KEY"
        secret = os.environ.get(variable)
        if not secret:
            print(f"webhook_load: set {variable} to the store's secret key", file=sys.stderr)
            return 2
        figures = fire(args.url, args.store, secret, args.requests)
    else:
        with tempfile.TemporaryDirectory(prefix="webhook-load-") as tmp:
            figures = run_against_cli(Path(tmp) / "home", args.requests)
    print(figures.summary())
    return 0 if figures.ok == args.requests and not figures.errors else 1


if __name__ == "__main__":
    sys.exit(main())
