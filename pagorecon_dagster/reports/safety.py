"""What a person may read in a report, and what a spreadsheet must never execute.

Every text cell of every report passes `shown(kind, value)` in the renderer, so no section can
forget to mask: free text (evidence, reasons) through `core.masking.mask_text`, identifiers
(order ids, CIPs, user names) with their emails masked, personal fields (document, account)
through `mask_digits`. CSV and XLSX then pass text through `inert()`."""

from __future__ import annotations

import re

from pagorecon_dagster.core.masking import mask_digits, mask_email, mask_text

# The control characters XML 1.0 forbids (tab, line feed and carriage return are allowed).
ILLEGAL_CHARACTERS_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")

# Column kinds that hold text.
LABEL = "label"          # our own words (status names, actions): shown as written
FREE_TEXT = "free_text"  # sentences from data (evidence, refund reasons): emails and long digit runs masked
IDENTIFIER = "identifier"  # order id, CIP, reference, user name: shown, except an email inside it
PERSONAL = "personal"    # document or account number: only the last 3 characters shown
TEXT_KINDS = (LABEL, FREE_TEXT, IDENTIFIER, PERSONAL)

# A cell starting with one of these is a formula (or DDE payload) to Excel, LibreOffice or Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_EMAIL_TOKEN = re.compile(r"\S+@\S+")
# ISO dates and Lima times in evidence ("2026-07-14 12:00"): mask_text would take them for a long
# digit run. A date glued to an email (".x@y") is not spared, so no email escapes through it.
_ISO_DATE_TIME = re.compile(
    r"(?<![\w\-.@])\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?:[ T]\d{2}:\d{2}(?::\d{2})?)?(?![\w\-@]|\.\w)"
)


def mask_free_text(text: str) -> str:
    """`mask_text` on everything but ISO dates and times, which stay readable."""
    pieces, last = [], 0
    for match in _ISO_DATE_TIME.finditer(text):
        pieces.append(mask_text(text[last:match.start()]))
        pieces.append(match.group(0))
        last = match.end()
    pieces.append(mask_text(text[last:]))
    return "".join(pieces)


def mask_identifier(text: str) -> str:
    """An order id or user name is shown as is, unless it carries an email (`ana@shop.pe` as order id)."""
    return _EMAIL_TOKEN.sub(lambda m: mask_email(m.group(0)), text)


def shown(kind: str, value: object) -> str:
    """The text a person reads for a text cell of `kind`."""
    if value is None:
        return ""
    text = str(value)
    if kind == FREE_TEXT:
        return mask_free_text(text)
    if kind == IDENTIFIER:
        return mask_identifier(text)
    if kind == PERSONAL:
        return mask_digits(text)
    if kind == LABEL:
        return text
    raise ValueError(f"unknown text kind {kind!r}; expected one of {', '.join(TEXT_KINDS)}")


def inert(text: str) -> str:
    """Text no spreadsheet executes: a leading formula character gets a `'` in front (what
    Excel itself writes for text typed as `'=...`), and XML-illegal control characters go."""
    text = ILLEGAL_CHARACTERS_RE.sub("", text)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text
