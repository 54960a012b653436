"""Every evidence sentence, in every report language, in one place.

The reconciliation stores an item's evidence as a message code and its values
(`recon_item_rows.evidence_code`, `evidence_args`, a JSON object; dbt_like_sql/recon_item_rows.sql).
This catalog renders them: `render` for a report in any language, and the DuckDB macros
`evidence_en` and `evidence_en_plain` (`macro_sql`, created with the warehouse schema) for the
English `evidence` column of `recon_items`. Change a template here and the column and every report
follow.

A template is text with `{name}` for a value, or `{name:kind}` for a value written with the words
of `WORDS[kind]` (a status word translated, a missing value named). Amounts, Lima times, dates and
identifiers arrive already written (`PEN 100.50`, `2026-07-14 19:30 Lima`) and read the same in
every language."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from string import Formatter

LANGUAGES = ("en", "es")

# A plain match (nine items in ten) stores no values: they are its row's own columns, which
# `recon_items` passes to `evidence_en_plain`.
PLAIN = "PAID_IN_FULL"

MESSAGES: dict[str, dict[str, str]] = {
    PLAIN: {
        "en": "CIP {cip} paid {paid} on {at}, equal to the order total {total}.",
        "es": "El CIP {cip} pagó {paid} el {at}, igual al total del pedido {total}.",
    },
    "PAID_WITHIN_FX_TOLERANCE": {
        "en": "CIP {cip} paid {paid} on {at}; at the SBS sell rate {rate} PEN/USD of {rate_date} that is {converted} "
              "against the order total {total}, within the {pct}% tolerance.",
        "es": "El CIP {cip} pagó {paid} el {at}; al tipo de cambio de venta SBS {rate} PEN/USD del {rate_date} "
              "equivale a {converted} frente al total del pedido {total}, dentro de la tolerancia de {pct}%.",
    },
    "UNDERPAID": {
        "en": "CIP {cip} paid {paid} on {at} against the order total {total}: underpaid by {gap}.",
        "es": "El CIP {cip} pagó {paid} el {at} frente al total del pedido {total}: faltan {gap}.",
    },
    "OVERPAID": {
        "en": "CIP {cip} paid {paid} on {at} against the order total {total}: overpaid by {gap}.",
        "es": "El CIP {cip} pagó {paid} el {at} frente al total del pedido {total}: sobran {gap}.",
    },
    "NO_FX_RATE": {
        "en": "CIP {cip} paid {paid} on {at} for an order in {currency} of {total}; no SBS rate is known on or before {day}.",
        "es": "El CIP {cip} pagó {paid} el {at} por un pedido en {currency} de {total}; "
              "no se conoce tipo de cambio SBS del {day} ni de antes.",
    },
    "OUTSIDE_FX_TOLERANCE": {
        "en": "CIP {cip} paid {paid} on {at} for an order in {currency} of {total}; at the SBS sell rate {rate} of "
              "{rate_date} that is {converted}, outside the {pct}% tolerance.",
        "es": "El CIP {cip} pagó {paid} el {at} por un pedido en {currency} de {total}; al tipo de cambio de venta SBS "
              "{rate} del {rate_date} equivale a {converted}, fuera de la tolerancia de {pct}%.",
    },
    "PAID_CANCELLED_ORDER": {
        "en": "The store cancelled the order ({status:order_status}) but CIP {cip} paid {paid} on {at}; refund the buyer.",
        "es": "La tienda anuló el pedido ({status:order_status}) pero el CIP {cip} pagó {paid} el {at}; "
              "hay que devolverle el dinero al comprador.",
    },
    "CANCELLED_UNPAID": {
        "en": "The order is cancelled and no CIP for it is paid.",
        "es": "El pedido está anulado y ningún CIP suyo está pagado.",
    },
    "REVERSED": {
        "en": "CIP {cip} was paid and then reversed (extorno); no other CIP is paid.",
        "es": "El CIP {cip} se pagó y luego se extornó; ningún otro CIP está pagado.",
    },
    "NOT_IN_STATEMENTS": {
        "en": "The store marks the order {status:order_status} but no CIP for reference {reference} is paid; "
              "statements cover up to {coverage}, past the grace day {grace_day} ({grace} business days).",
        "es": "La tienda marca el pedido como {status:order_status} pero ningún CIP de la referencia {reference} está "
              "pagado; los estados de cuenta llegan hasta el {coverage}, pasado el día de gracia {grace_day} "
              "({grace} días hábiles).",
    },
    "CIP_CLOSED": {
        "en": "CIP {cip} is {status:cip_status} and the order is not paid.",
        "es": "El CIP {cip} está {status:cip_status} y el pedido no está pagado.",
    },
    "CIP_EXPIRED_BEFORE_COVERAGE": {
        "en": "CIP {cip} expired at {expiry}, before the statements' coverage {coverage} and the order is not paid.",
        "es": "El CIP {cip} venció el {expiry}, antes de la cobertura de los estados de cuenta ({coverage}), "
              "y el pedido no está pagado.",
    },
    "DUPLICATE_REFERENCE": {
        "en": "Reference {reference} is shared with order {owner}, which takes its CIPs; this order is not matched.",
        "es": "La referencia {reference} la comparte el pedido {owner}, que se queda con sus CIP; este pedido no se concilia.",
    },
    "WITHIN_GRACE": {
        "en": "The store marks the order {status:order_status} but no CIP is paid yet; grace until "
              "{grace_day:unknown_day}, statements cover up to {coverage:coverage}.",
        "es": "La tienda marca el pedido como {status:order_status} pero aún no hay ningún CIP pagado; plazo de gracia "
              "hasta el {grace_day:unknown_day}, los estados de cuenta llegan hasta {coverage:coverage}.",
    },
    "NO_CIP": {
        "en": "No CIP for reference {reference} appears in the statements yet.",
        "es": "Ningún CIP de la referencia {reference} aparece aún en los estados de cuenta.",
    },
    "CIP_PENDING": {
        "en": "CIP {cip} is {status:cip_status}; waiting for payment.",
        "es": "El CIP {cip} está {status:cip_status}; se espera el pago.",
    },
    "PAID_AGAIN": {
        "en": "Order {order} ({total}) was already paid by CIP {first} on {first_at}; CIP {cip} paid {paid} again on "
              "{at} (payment {rank} of {count}); refund the excess.",
        "es": "El pedido {order} ({total}) ya lo pagó el CIP {first} el {first_at}; el CIP {cip} pagó {paid} otra vez "
              "el {at} (pago {rank} de {count}); hay que devolver el exceso.",
    },
    "ORDER_PAID_OTHER_METHOD": {
        "en": "CIP {cip} (transaction code {code}) paid {paid} on {at}; order {order} was paid by another method "
              "({method:payment_method}): the buyer paid twice.",
        "es": "El CIP {cip} (código de transacción {code}) pagó {paid} el {at}; el pedido {order} se pagó por otro medio "
              "({method:payment_method}): el comprador pagó dos veces.",
    },
    "NO_ORDER": {
        "en": "CIP {cip} (transaction code {code}) paid {paid} on {at}; no order of store {store} has reference "
              "{reference}; a person must decide.",
        "es": "El CIP {cip} (código de transacción {code}) pagó {paid} el {at}; ningún pedido de la tienda {store} "
              "tiene la referencia {reference}; debe decidirlo una persona.",
    },
    "NO_REFERENCE": {
        "en": "CIP {cip} paid {paid} on {at}; the CIP carried no reference (transaction code), so no order can be "
              "linked to it; a person must decide.",
        "es": "El CIP {cip} pagó {paid} el {at}; el CIP no trae referencia (código de transacción), así que no se puede "
              "vincular a ningún pedido; debe decidirlo una persona.",
    },
}

# Sentences that follow the message, in this order, each when its value is present.
ADDENDA: dict[str, dict[str, str]] = {
    "paid_count": {
        "en": "Paid {paid_count} times: see DUPLICATE_PAYMENT rows.",
        "es": "Pagado {paid_count} veces: ver las filas DUPLICATE_PAYMENT.",
    },
    "cips": {
        "en": "CIPs for this reference: {cips:cip_list}.",
        "es": "CIP de esta referencia: {cips:cip_list}.",
    },
    "order_cip": {
        "en": "The order's own cip field says {order_cip}.",
        "es": "El campo cip del propio pedido dice {order_cip}.",
    },
}

# kind -> language -> value -> words; the key None names a missing value. A value a language
# does not list is written as it is (English status words are the warehouse's own).
WORDS: dict[str, dict[str, dict[str | None, str]]] = {
    "order_status": {
        "en": {},
        "es": {"pending": "pendiente", "paid": "pagado", "cancelled": "anulado", "refunded": "reembolsado"},
    },
    "cip_status": {
        "en": {},
        "es": {"pending": "pendiente", "paid": "pagado", "expired": "vencido", "deleted": "eliminado",
               "reversed": "extornado"},
    },
    "unknown_day": {"en": {None: "?"}, "es": {None: "?"}},
    "coverage": {"en": {None: "no statement yet"}, "es": {None: "aún sin estado de cuenta"}},
    "payment_method": {"en": {None: "unknown"}, "es": {None: "desconocido"}},
}
# `{cips:cip_list}`: the reference's CIPs, [{"cip": ..., "status": ...}], as `50000001 paid, 50000002 expired`.
CIP_LIST = "cip_list"


def _pieces(template: str) -> list[tuple[str, str | None, str]]:
    """(literal text, value name or None, kind) in order."""
    return [(literal, name, kind) for literal, name, kind, _ in Formatter().parse(template)]


def _word(kind: str, language: str, value: object) -> str:
    words = WORDS[kind][language]
    if value is None:
        return words.get(None, "")
    return words.get(str(value), str(value))


def _value(name: str, kind: str, args: Mapping[str, object], language: str) -> str:
    value = args.get(name)
    if kind == CIP_LIST:
        return ", ".join(f"{c['cip']} {_word('cip_status', language, c['status'])}" for c in value or [])
    if kind:
        return _word(kind, language, value)
    return "" if value is None else str(value)


def _fill(template: str, args: Mapping[str, object], language: str) -> str:
    return "".join(literal + (_value(name, kind, args, language) if name is not None else "")
                   for literal, name, kind in _pieces(template))


def render(code: str, args: Mapping[str, object] | str | None, language: str) -> str:
    """The evidence of message `code` with `args` (a mapping or its JSON) in `language`."""
    if code not in MESSAGES:
        raise ValueError(f"evidence code {code!r} is not in the catalog (reconciliation/evidence_catalog.py)")
    if language not in LANGUAGES:
        raise ValueError(f"evidence language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    values = json.loads(args) if isinstance(args, str) else dict(args or {})
    sentences = [_fill(MESSAGES[code][language], values, language)]
    sentences += [_fill(addendum[language], values, language)
                  for name, addendum in ADDENDA.items() if values.get(name) not in (None, [])]
    return " ".join(sentences)


# --- The English templates as DuckDB SQL ---------------------------------------------------------

def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _word_sql(kind: str, value: str) -> str:
    words = WORDS[kind]["en"]
    named = [(k, w) for k, w in words.items() if k is not None]
    sql = value
    if named:
        sql = "CASE " + value + "".join(f" WHEN {_literal(k)} THEN {_literal(w)}" for k, w in named) + f" ELSE {value} END"
    if None in words:
        sql = f"coalesce({sql}, {_literal(words[None])})"
    return sql


def _template_sql(template: str, value: Callable[[str, str], str]) -> str:
    parts = []
    for literal, name, kind in _pieces(template):
        if literal:
            parts.append(_literal(literal))
        if name is not None:
            parts.append(value(name, kind))
    return f"concat({', '.join(parts)})"


def _json_value(name: str, kind: str) -> str:
    if kind == CIP_LIST:
        entries = f"""from_json(json_extract(args, '$.{name}'), '[{{"cip": "VARCHAR", "status": "VARCHAR"}}]')"""
        return (f"array_to_string(list_transform({entries}, lambda c: concat(c.cip, ' ', "
                f"{_word_sql('cip_status', 'c.status')})), ', ')")
    extracted = f"json_extract_string(args, '$.{name}')"
    return _word_sql(kind, extracted) if kind else extracted


def _row_value(name: str, kind: str) -> str:
    if kind:
        raise ValueError(f"the plain match's values are the row's columns, written as they are: {{{name}:{kind}}}")
    return f"v.{name}"


def macro_sql() -> str:
    """`evidence_en(code, args)`: the English evidence of a stored code and its JSON values;
    `evidence_en_plain(v)`: a plain match's, from a STRUCT of the row's own values."""
    branches = "\n".join(f"        WHEN {_literal(code)} THEN {_template_sql(text['en'], _json_value)}"
                         for code, text in MESSAGES.items())
    addenda = "".join(
        f",\n    CASE WHEN json_extract_string(args, '$.{name}') IS NOT NULL THEN {_template_sql(text['en'], _json_value)} END"
        for name, text in ADDENDA.items()
    )
    return (
        "-- Generated from pagorecon_dagster/reconciliation/evidence_catalog.py: edit the templates there.\n"
        f"CREATE OR REPLACE MACRO evidence_en(code, args) AS concat_ws(' ',\n    CASE code\n{branches}\n    END{addenda});\n"
        f"CREATE OR REPLACE MACRO evidence_en_plain(v) AS {_template_sql(MESSAGES[PLAIN]['en'], _row_value)};\n"
    )
