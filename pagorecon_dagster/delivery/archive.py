"""The report archive: every report version that is emailed is first kept under
`$PAGORECON_HOME/archive/reports/`, named by the report, its language and the start of its content
hash (`all_stores/2026-07/all_stores_2026-07-14.es.3f9a0c1d2b4e5f60.html|csv|xlsx`). A version is
written once and never changed, so an audit reads exactly what finance received; table
`report_emails` says who received which version when."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pagorecon_dagster.reports.content import Report
from pagorecon_dagster.reports.writer import FORMATS, write_report

FOLDER = "reports"
NAME_HASH = 16  # hex digits of the sha256 in a file name; the table keeps the whole


@dataclass(frozen=True)
class Version:
    report: Report
    sha256: str
    base: str                  # under archive/reports/, without suffix
    files: dict[str, Path]     # format -> archived file

    def content(self, fmt: str) -> bytes:
        return self.files[fmt].read_bytes()


def version_sha256(files: dict[str, bytes]) -> str:
    """One hash over the three formats: any change in any of them is a new version."""
    digest = hashlib.sha256()
    for fmt in FORMATS:
        digest.update(fmt.encode() + b"\0" + hashlib.sha256(files[fmt]).hexdigest().encode() + b"\n")
    return digest.hexdigest()


def archive_version(report: Report, archive_dir: Path) -> Version:
    """Render `report` (the report writer's own files), keep it in the archive unless that version
    is there already, and return it."""
    root = archive_dir / FOLDER
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".rendering-") as scratch:
        rendered = write_report(report, Path(scratch))
        data = {fmt: rendered[fmt].read_bytes() for fmt in FORMATS}
        sha = version_sha256(data)
        base = f"{report.path}.{report.language}.{sha[:NAME_HASH]}"
        files = {fmt: root / f"{base}.{fmt}" for fmt in FORMATS}
        for fmt, target in files.items():
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(rendered[fmt], target)  # same file system: whole or absent
    return Version(report, sha, base, files)
