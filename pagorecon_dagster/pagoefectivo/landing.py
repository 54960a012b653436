"""Durable, create-once writes into `landing/`: what the API pull and the webhook share.

A landing file appears whole or not at all (the ingester never sees half a file), survives a
power cut once we said it was written, and is never overwritten (landing files are immutable)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

# Temporary names end in `.partial` so the ingester (`*.csv`, `*.json`) never picks them up.
TEMP_PREFIX, TEMP_SUFFIX = ".incoming-", ".partial"
# A write takes milliseconds; a temp file this old was left by a crash, not by a live writer.
STALE_PARTIAL_SECONDS = 60.0


def write_new(path: Path, content: bytes) -> bool:
    """Create `path` holding `content`, unless it already exists. Returns True when written.

    Temp file in the same folder -> fsync -> hard link into place (atomic, and fails if the name
    exists, so two concurrent writers cannot both win) -> fsync the folder."""
    _make_dirs(path.parent)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        _fsync_dir(path.parent)
        return True
    finally:
        os.unlink(temp)


def remove_stale_partials(folder: Path, older_than: float = STALE_PARTIAL_SECONDS) -> list[Path]:
    """Delete the temp files of writes interrupted by a crash under `folder`; returns them."""
    if not folder.exists():
        return []
    cutoff = time.time() - older_than
    removed = []
    for temp in folder.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        try:
            if temp.is_file() and temp.stat().st_mtime < cutoff:
                temp.unlink()
                removed.append(temp)
        except FileNotFoundError:
            continue  # its writer finished with it meanwhile
    return removed


def _make_dirs(folder: Path) -> None:
    """mkdir -p, then fsync the parent of every folder created so the new entries are durable."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        _fsync_dir(created.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
