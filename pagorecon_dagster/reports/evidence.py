"""The `evidence` of a `recon_items` row in the report's language.

The reconciliation stores each item's evidence as a message code and its values; every language,
English included, is rendered from them by the one message catalog
(reconciliation/evidence_catalog.py), the same that writes the English `evidence` column. A row
written before evidence codes has only its English sentence: it is shown as it was written."""

from __future__ import annotations

from collections.abc import Mapping

from pagorecon_dagster.reconciliation.evidence_catalog import render


def evidence_in(language: str, code: str | None, args: Mapping[str, object] | str | None, stored: str | None) -> str | None:
    """The evidence of message `code` with `args` in `language`; `stored` (the `evidence` column)
    when the row has no code."""
    if code is None:
        return stored
    return render(code, args, language)
