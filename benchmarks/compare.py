#!/usr/bin/env python
"""pagorecon benchmarks side by side: the same steps for several columns in one sitting.

    python benchmarks/compare.py \\
        --column 'today on 2.0.1' ../bench-base ../bench-venvs/duckdb-2.0.1/bin/python \\
        --column 'today on 1.5.5' ../bench-base ../bench-venvs/duckdb-1.5.5/bin/python \\
        --column 'lake on 1.5.5'  .             .venv/bin/python \\
        --orders 10000000 --rows 1000000 --out compare.md

A column is a checkout (its product code and its benchmarks/bench.py) and a Python interpreter (a
venv with that checkout's dependencies and a DuckDB version); benchmarks/setup_compare.sh makes
the "today's code" ones. The steps are bench.py's, in its order; each step runs for every column
before the next step starts, the columns in turn forward then backward, so drift of the machine
during the sitting falls on every column alike. The table gives each step's seconds and peak RSS
per column and the ratio of one column to another (by default the last to the one before it),
marking product steps over --limit. See benchmarks/README.md, Three columns.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (benchmarks/bench.py: the steps, their order and the child protocol)

PROBE = """
import json, platform, sys
import duckdb, pandas, pagorecon_dagster
print(json.dumps({"python": platform.python_version(), "duckdb": duckdb.__version__, "pandas": pandas.__version__,
                  "package": pagorecon_dagster.__file__}))
"""


@dataclass
class Column:
    label: str
    checkout: Path
    python: str
    about: dict = field(default_factory=dict)
    runner: bench.Bench | None = None

    @property
    def script(self) -> Path:
        return self.checkout / "benchmarks" / "bench.py"

    def env(self) -> dict:
        # The checkout's own package first, whatever else the venv has installed.
        path = os.pathsep.join([str(self.checkout)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
        return {**os.environ, "PYTHONPATH": path}

    def probe(self) -> None:
        """Versions, commit, and that the interpreter imports this checkout's package."""
        if not self.script.is_file():
            raise SystemExit(f"column {self.label!r}: no {self.script}")
        done = subprocess.run([self.python, "-c", PROBE], cwd="/", env=self.env(), capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"column {self.label!r}: {self.python} cannot import the product from {self.checkout}:\n{done.stderr.strip()}")
        self.about = json.loads(done.stdout.strip().splitlines()[-1])
        if not Path(self.about["package"]).resolve().is_relative_to(self.checkout):
            raise SystemExit(f"column {self.label!r}: {self.python} imports pagorecon_dagster from "
                             f"{self.about['package']}, not from {self.checkout}")
        git = lambda *a: subprocess.run(["git", "-C", str(self.checkout), *a], capture_output=True, text=True).stdout.strip()
        self.about["commit"] = git("rev-parse", "--short", "HEAD") or "?"
        self.about["changed"] = sorted({line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()})
        self.about["same_bench"] = self.script.read_bytes() == Path(bench.__file__).read_bytes()

    def describe(self) -> str:
        a = self.about
        changed = f", {len(a['changed'])} file(s) changed and not committed" if a["changed"] else ""
        return (f"**{self.label}**: `{self.checkout}` at {a['commit']}{changed}; Python {a['python']}, "
                f"DuckDB {a['duckdb']}, pandas {a['pandas']}")


def lockstep(columns: list[Column], sequences: list) -> None:
    """One step of every column, then the next step: forward, backward, forward ..."""
    live = list(range(len(columns)))
    turn = 0
    while live:
        for i in (live if turn % 2 == 0 else live[::-1]).copy():
            try:
                next(sequences[i])
            except StopIteration:
                live.remove(i)
        turn += 1


def judged(step: str) -> bool:
    """A product step, held to --limit (not the bench's own setup or yardstick)."""
    return "(setup)" not in step and "yardstick" not in step


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def table(columns: list[Column], candidate: int, base: int, limit: float) -> tuple[str, list[dict]]:
    steps: list[str] = []
    by_column = []
    for column in columns:
        rows = {}
        for row in column.runner.rows:
            rows[row["step"]] = row
            if row["step"] not in steps:
                steps.append(row["step"])
        by_column.append(rows)
    cand, ref = columns[candidate].label, columns[base].label
    head = ["step", "rows"] + [f"{c.label}: s" for c in columns] + [f"{c.label}: MiB" for c in columns] + \
           [f"{cand} / {ref}: s", f"{cand} / {ref}: MiB"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    out = []
    for step in steps:
        cells = [rows.get(step) for rows in by_column]
        counts = {c["rows"] for c in cells if c and c["rows"] is not None}
        if not counts:
            count = "-"
        elif len(counts) == 1:
            count = f"{next(iter(counts)):,}"
        else:  # the columns did not produce the same rows: shown, never averaged away
            count = " / ".join(f"{c['rows']:,}" if c and c["rows"] is not None else "-" for c in cells) + " (differ)"
        secs = [c["seconds"] if c else None for c in cells]
        rss = [c["rss"] if c else None for c in cells]
        done = secs[candidate] is not None and secs[base] is not None  # a killed step's memory is not its peak
        ratios = (_ratio(secs[candidate], secs[base]), _ratio(rss[candidate], rss[base]) if done else None)
        marks = [("-" if r is None else f"**{r:.2f}**" if judged(step) and r > limit else f"{r:.2f}") for r in ratios]
        lines.append("| " + " | ".join([step, count]
                                        + [f"{s:.2f}" if s is not None else (c["note"].split(":")[0] if c else "-") for s, c in zip(secs, cells)]
                                        + [f"{m:,.0f}" if m is not None else "-" for m in rss] + marks) + " |")
        out.append({"step": step, "rows": sorted(counts) if counts else None,
                    "columns": {col.label: cell for col, cell in zip(columns, cells)},
                    "ratio_seconds": ratios[0], "ratio_rss": ratios[1], "judged": judged(step)})
    return "\n".join(lines), out


def against_yardstick(columns: list[Column]) -> list[str]:
    """Each column's whole-window reconcile over its own yardstick, as the sections above give it."""
    lines = []
    for column in columns:
        rows = {r["step"]: r for r in column.runner.rows if r["seconds"] is not None}
        for step, row in rows.items():
            if not step.endswith("yardstick, a plain join written"):
                continue
            size = step.split(":")[0]
            recon = rows.get(f"{size}: reconcile + summarize")
            if recon:
                lines.append(f"{column.label}, {size}: reconcile + summarize {recon['seconds']:.2f} s / yardstick "
                             f"{row['seconds']:.2f} s = {recon['seconds'] / row['seconds']:.2f}")
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--column", nargs=3, action="append", metavar=("LABEL", "CHECKOUT", "PYTHON"), required=True,
                   help="a column: its label, the checkout whose code and bench.py it runs, the interpreter (repeat)")
    p.add_argument("--orders", default="10000000", help="recon sizes, comma separated (default 10000000; 0 skips recon)")
    p.add_argument("--rows", default="1000000", help="ingest sizes, comma separated (default 1000000; 0 skips ingest)")
    p.add_argument("--no-2x", dest="no_2x", action="store_true", help="ingest: skip the 2x-rows memory check")
    p.add_argument("--no-rerun", action="store_true", help="recon: skip the rerun of the whole window")
    p.add_argument("--repeat", type=int, default=1, help="recon: how many reruns to time (default 1)")
    p.add_argument("--ratio", default=None, metavar="CANDIDATE/BASE",
                   help="the columns of the ratio, by label (default: the last column / the one before it)")
    p.add_argument("--limit", type=float, default=1.1, help="mark product steps whose ratio exceeds this (default 1.1)")
    p.add_argument("--threads", type=int, default=None, help="DuckDB SET threads (every column)")
    p.add_argument("--memory-limit", default=None, help="DuckDB SET memory_limit (every column)")
    p.add_argument("--timeout", type=float, default=600.0, help="kill a step after this many seconds")
    p.add_argument("--workdir", default=None, help="where the homes are built (default: a temp dir, removed at the end)")
    p.add_argument("--keep", action="store_true", help="keep the workdir and homes")
    p.add_argument("--out", default=None, metavar="PATH", help="also write the markdown to PATH")
    p.add_argument("--json", default=None, metavar="PATH", help="also write every figure as JSON to PATH")
    args = p.parse_args(argv)

    # A path to an interpreter is made absolute but not resolved: a venv's python is a symlink out of the venv.
    columns = [Column(label, Path(checkout).resolve(), os.path.abspath(python) if os.sep in python else python)
               for label, checkout, python in args.column]
    if len(columns) < 2:
        p.error("give at least two --column")
    if len({c.label for c in columns}) < len(columns):
        p.error("column labels must differ")
    labels = [c.label for c in columns]
    if args.ratio:
        cand, _, ref = args.ratio.partition("/")
        if cand not in labels or ref not in labels:
            p.error(f"--ratio {args.ratio!r}: labels are {labels}")
        candidate, base = labels.index(cand), labels.index(ref)
    else:
        candidate, base = len(columns) - 1, len(columns) - 2
    for column in columns:
        column.probe()
        print(column.describe(), flush=True)
        if not column.about["same_bench"]:  # the same steps for every column, or the figures do not compare
            raise SystemExit(f"column {column.label!r}: {column.script} differs from {bench.__file__}; "
                             f"commit bench.py and run benchmarks/setup_compare.sh again")

    if args.workdir:
        root = Path(args.workdir).resolve()
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="pagorecon-compare-"))
    knobs = argparse.Namespace(threads=args.threads, memory_limit=args.memory_limit, no_insertion_order=False,
                               temp_directory=None, timeout=args.timeout, reuse=False, no_rerun=args.no_rerun,
                               repeat=args.repeat, explain=False, profile=False, keep=args.keep)
    homes = []
    for i, column in enumerate(columns):
        home = root / f"{i + 1}-{re.sub(r'[^A-Za-z0-9.]+', '-', column.label).strip('-')}"
        home.mkdir(exist_ok=True)
        homes.append(home)
        column.runner = bench.Bench(knobs, python=column.python, script=str(column.script), env=column.env())

    started = dt.datetime.now()
    load = os.getloadavg()
    try:
        for n in bench._counts(args.orders):
            if n:
                lockstep(columns, [c.runner.recon_steps(n, home) for c, home in zip(columns, homes)])
        for n in bench._counts(args.rows):
            for size in ([n] if args.no_2x else [n, 2 * n]) if n else []:
                lockstep(columns, [c.runner.ingest_steps(size, home) for c, home in zip(columns, homes)])
    finally:
        finished = dt.datetime.now()
        text, rows = table(columns, candidate, base, args.limit)
        header = [f"{started:%Y-%m-%d %H:%M}-{finished:%H:%M}, {os.cpu_count()} CPUs, load average "
                  f"{load[0]:.1f} at the start and {os.getloadavg()[0]:.1f} at the end; recon {args.orders}, "
                  f"ingest {args.rows}{'' if args.no_2x else ' and 2x'}"] + [c.describe() for c in columns]
        footer = against_yardstick(columns)
        markdown = "\n".join([f"* {line}" for line in header] + ["", text, ""] + [f"* {line}" for line in footer])
        print("\n" + markdown)
        if args.out:
            Path(args.out).write_text(markdown + "\n", encoding="utf-8")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "started": started.isoformat(timespec="seconds"), "finished": finished.isoformat(timespec="seconds"),
                "orders": args.orders, "ingest_rows": args.rows, "limit": args.limit,
                "ratio": [columns[candidate].label, columns[base].label],
                "columns": [{"label": c.label, "checkout": str(c.checkout), "python_path": c.python, **c.about} for c in columns],
                "steps": rows}, indent=1, default=str), encoding="utf-8")
        if not args.workdir and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        elif args.keep:
            print(f"\nkept {root}")
    failures = sum(c.runner.failures for c in columns)
    if failures:
        raise SystemExit(f"{failures} step(s) failed or were killed")


if __name__ == "__main__":
    main()
