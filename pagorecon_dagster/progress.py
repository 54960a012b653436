"""Progress for a person at a terminal (the CLI turns it on); silent inside `dagster dev`."""

from __future__ import annotations

import os
import sys
import time

ENV = "PAGORECON_PROGRESS"
_last = 0.0


def enabled() -> bool:
    return os.environ.get(ENV) == "1"


def update(message: str) -> None:
    """A transient line: redrawn in place on a terminal, at most once a second otherwise."""
    global _last
    if not enabled():
        return
    if sys.stderr.isatty():
        print(f"\r  {message[:100]:<100}", end="", file=sys.stderr, flush=True)
    elif time.monotonic() - _last >= 1.0:
        print(f"  {message}", file=sys.stderr, flush=True)
        _last = time.monotonic()


def step(message: str) -> None:
    """A line that stays."""
    if not enabled():
        return
    if sys.stderr.isatty():
        print(f"\r{' ' * 104}\r", end="", file=sys.stderr)
    print(f"- {message}", file=sys.stderr, flush=True)
