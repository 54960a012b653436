"""Progress for a person at a terminal (the CLI turns it on around the runs it executes in its
own process); silent inside `dagster dev`."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

_last = 0.0
_shown = False


def enabled() -> bool:
    return _shown


@contextlib.contextmanager
def shown() -> Iterator[None]:
    """Show progress while inside (runs executed in this process)."""
    global _shown
    before, _shown = _shown, True
    try:
        yield
    finally:
        _shown = before


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
