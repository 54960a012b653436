"""`pagorecon landing retire FILE --reason TEXT` (docs/operations.md, A file that can never be
read): set aside a landing file that can never be read. It moves to archive/landing/<its path>, is recorded `retired` in `ingested_files`
with who, when and why, and no later run sees it. Nothing else ever moves landing files."""

from __future__ import annotations

import getpass
import sys

from pagorecon_dagster.config import load_settings
from pagorecon_dagster.core.masking import mask_text
from pagorecon_dagster.ingestion.loader import RetireRefused, landing_file_for, retire_file
from pagorecon_dagster.warehouse.duckdb import connect

EXIT_OK, EXIT_REFUSED = 0, 2


def register(subparsers) -> None:
    landing = subparsers.add_parser("landing", help="landing files: set aside one that can never be read")
    sub = landing.add_subparsers(dest="landing_command", required=True)
    retire = sub.add_parser("retire", help="move a landing file to archive/ and record it `retired` in ingested_files")
    retire.add_argument("file", help="path relative to landing/ (as a run names it), or absolute inside landing/")
    retire.add_argument("--reason", required=True, help="why (recorded in ingested_files.error)")
    retire.set_defaults(func=cmd_retire)


def operator() -> str:
    """The operating-system account running the command: not something typed on the command line."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def cmd_retire(args) -> int:
    settings = load_settings(args.home)
    reason = " ".join(args.reason.split())
    if not reason:
        print("pagorecon: --reason is empty; say why the file is set aside", file=sys.stderr)
        return EXIT_REFUSED
    try:
        path = landing_file_for(settings, args.file)
        with connect(settings.lake) as con:
            archived = retire_file(con, settings, path, reason=reason, who=operator())
    except RetireRefused as exc:
        print(f"pagorecon: cannot retire {mask_text(str(exc))}", file=sys.stderr)
        return EXIT_REFUSED
    shown = archived.relative_to(settings.home).as_posix() if archived.is_relative_to(settings.home) else str(archived)
    relative = path.relative_to(settings.landing.resolve()).as_posix()
    print(f"Retired landing/{relative} -> {shown}; recorded in ingested_files (status retired). Runs no longer read it.")
    return EXIT_OK
