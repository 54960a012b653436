"""Personal data (Law 29733) masked wherever a person reads output: reports, logs, CLI."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-\u00C0-\u017F]+)@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
# 9+ digits, optionally dash-grouped (CCI 002-193-...); a date like 2026-07-14 has only 8.
_LONG_DIGITS = re.compile(r"(?<![\d-])(\d(?:-?\d){8,})(?![\d-])")


def mask_email(value: str | None) -> str:
    """`josé.peña@example.pe` -> `j*********@example.pe`."""
    if not value:
        return ""
    local, _, domain = value.partition("@")
    if not domain:
        return mask_digits(value)
    return f"{local[:1]}{'*' * max(len(local) - 1, 3)}@{domain}"


def mask_digits(value: str | None, keep: int = 3) -> str:
    """Document numbers, phones, accounts: keep the last `keep` characters."""
    if not value:
        return ""
    text = str(value)
    if len(text) <= keep:
        return "*" * len(text)
    return "*" * (len(text) - keep) + text[-keep:]


def mask_text(text: str | None) -> str:
    """Mask every email and every run of 9+ digits (phone, RUC, CCI) inside free text; mask known
    document fields with mask_digits (a DNI has 8 digits, like many CIPs)."""
    if not text:
        return text or ""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _LONG_DIGITS.sub(lambda m: mask_digits(m.group(1).replace("-", "")), text)
