"""What a person reads never shows a document, a phone or an email in full (Law 29733), while
CIPs, dates and amounts stay readable."""

import pytest

from pagorecon_dagster.core.masking import mask_text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("DNI 45871236", "DNI *****236"),
        ("90000001,A1,,paid,PEN,10.00,BCP,DNI,45871236,rosa@example.pe", "*****001,A1,,paid,PEN,10.00,BCP,DNI,*****236,r***@example.pe"),
        ("RUC 20123456789", "RUC ********789"),
        ("CE 001234567", "CE ******567"),
        ("carnet 000123456789", "carnet *********789"),
        ("carnet C12345678", "carnet ******678"),
        ("carnet 001234567AB", "carnet ********7AB"),
        ("call +51 987 654 321 now", "call *********321 now"),
        ("call 987 654 321 now", "call ******321 now"),
        ("call 987-654-321 now", "call ******321 now"),
        ("call +51987654321 now", "call *********321 now"),
        ("Lima office +51 1 234 5678", "Lima office ********678"),
    ],
)
def test_documents_and_phones_are_masked(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "CIP 90000001 paid PEN 190.00 on 2026-07-14 12:10 Lima",
        "CIPs for this reference: 90000001 (paid), 90000002 (expired)",
        "auto-shop-91000003-paid_cancelled_order",
        "1 rejected row(s) in landing files touching 2026-07-14: landing/statements/shop/s.csv 1 rejected",
        "reference ORDER-1001 amount 1234.50",
    ],
)
def test_cips_dates_amounts_and_ids_stay_readable(text):
    assert mask_text(text) == text


def test_a_document_inside_a_cip_sentence_is_still_masked():
    assert mask_text("CIP 90000001 paid by DNI 45871236") == "CIP 90000001 paid by DNI *****236"
    assert mask_text("CIP 90000001 paid. Buyer 45871236") == "CIP 90000001 paid. Buyer *****236"
