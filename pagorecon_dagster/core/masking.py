"""Personal data (Law 29733) masked wherever a person reads output: reports, logs, CLI, errors,
alerts. What free text masks (mask_text):
- emails;
- runs of 9+ digits, optionally dash-grouped: phones (987654321, +51987654321), RUCs (11 digits),
  carnets de extranjería (9 to 12 digits), CCIs (002-193-...);
- 8-digit numbers (DNIs), except one the text itself labels a CIP ("CIP 90000001", "CIPs for
  this reference: 90000001, 90000002"): CIPs are 8 digits too and finance needs them;
- carnets de extranjería with letters: 9 to 12 letters and digits, at least 7 of them digits and
  at most 3 letters at either end (C12345678, 001234567AB);
- phone numbers written with spaces, dots or dashes: a 9-digit mobile starting with 9 grouped
  3-3-3 (987 654 321), and anything after a +51 country code (+51 987 654 321, +51 1 234 5678).
ISO dates (2026-07-14, 8 digits with dashes) stay readable."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-\u00C0-\u017F]+)@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
# +51 then 8-9 digits in groups; or a 9-digit mobile (starts with 9) grouped 3-3-3.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+51[\s.-]*\(?\d\)?(?:[\s.-]*\d){7,8}|9\d{2}[\s.-]\d{3}[\s.-]\d{3})(?![\w-])"
)
# 9+ digits, optionally dash-grouped (CCI 002-193-...); a date like 2026-07-14 has only 8.
_LONG_DIGITS = re.compile(r"(?<![\d-])(\d(?:-?\d){8,})(?![\d-])")
_CARNET = re.compile(r"(?<![\w-])(?=[A-Za-z0-9]{9,12}(?![\w-]))[A-Za-z]{0,3}\d{7,12}[A-Za-z]{0,3}(?![\w-])")
_EIGHT_DIGITS = re.compile(r"(?<![\w-])\d{8}(?![\w-])")
# The 8-digit number sits in a clause that a CIP label opened, with no document label between.
_CIP_CLAUSE = re.compile(
    r"\bCIPs?\b(?:(?!\.\s|;|\n|\b(?:DNI|RUC|CE|doc\w*|phone|tel\w*|cel\w*|email)\b).){0,80}$",
    re.IGNORECASE | re.DOTALL,
)


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


def _mask_dni(match: re.Match) -> str:
    preceding = match.string[max(0, match.start() - 120):match.start()]
    return match.group(0) if _CIP_CLAUSE.search(preceding) else mask_digits(match.group(0))


def mask_text(text: str | None) -> str:
    """Mask every email, phone, RUC, DNI, carnet de extranjería and account number inside free
    text (see the module's docstring for the shapes)."""
    if not text:
        return text or ""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    text = _PHONE.sub(lambda m: mask_digits(re.sub(r"[^\d+]", "", m.group(0))), text)
    text = _CARNET.sub(lambda m: mask_digits(m.group(0)), text)
    text = _LONG_DIGITS.sub(lambda m: mask_digits(m.group(1).replace("-", "")), text)
    return _EIGHT_DIGITS.sub(_mask_dni, text)
