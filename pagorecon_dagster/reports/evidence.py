"""The `evidence` sentences of `recon_items` in the report's language.

The reconciliation writes each sentence in English from a fixed set of shapes
(dbt_like_sql/recon_item_rows.sql and recon_items.sql). A Spanish report reads each shape and
writes it again in Spanish, with the same numbers, dates and identifiers. An evidence that is not
made entirely of known shapes (written by an older version, say) is shown as it is, in English:
never half translated, never lost."""

from __future__ import annotations

import re
from functools import lru_cache

# What the sentences are made of. Identifiers (order ids, references, transaction codes) are taken
# lazily up to the literal text that follows them.
_PIECES = {
    "cip": r"(?P<{}>\S+)",
    "money": r"(?P<{}>(?:[A-Z]{{3}}|\?) -?\d+\.\d{{2}})",
    "lima": r"(?P<{}>\d{{4}}-\d{{2}}-\d{{2}} \d{{2}}:\d{{2}} Lima)",
    "date": r"(?P<{}>\d{{4}}-\d{{2}}-\d{{2}})",
    "number": r"(?P<{}>-?\d+(?:\.\d+)?)",
    "word": r"(?P<{}>[a-z_]+)",
    "text": r"(?P<{}>.+?)",
    "currency": r"(?P<{}>[A-Z]{{3}})",
}
_FIELD = re.compile(r"\{(\w+):(\w+)\}")

ORDER_STATUS_ES = {"pending": "pendiente", "paid": "pagado", "cancelled": "anulado", "refunded": "reembolsado"}
CIP_STATUS_ES = {"pending": "pendiente", "paid": "pagado", "expired": "vencido", "deleted": "eliminado",
                 "reversed": "extornado"}

# (English shape, Spanish shape). `{name:kind}` in the English is a value; the Spanish repeats it by
# name, `{name|order}` / `{name|cip}` translating an order or CIP status word.
SENTENCES_ES: list[tuple[str, str]] = [
    ("CIP {cip:cip} paid {paid:money} on {at:lima}, equal to the order total {total:money}.",
     "El CIP {cip} pagó {paid} el {at}, igual al total del pedido {total}."),
    ("CIP {cip:cip} paid {paid:money} on {at:lima}; at the SBS sell rate {rate:number} PEN/USD of {rate_date:date} "
     "that is {converted:money} against the order total {total:money}, within the {pct:number}% tolerance.",
     "El CIP {cip} pagó {paid} el {at}; al tipo de cambio de venta SBS {rate} PEN/USD del {rate_date} "
     "equivale a {converted} frente al total del pedido {total}, dentro de la tolerancia de {pct}%."),
    ("CIP {cip:cip} paid {paid:money} on {at:lima} against the order total {total:money}: underpaid by {gap:money}.",
     "El CIP {cip} pagó {paid} el {at} frente al total del pedido {total}: faltan {gap}."),
    ("CIP {cip:cip} paid {paid:money} on {at:lima} against the order total {total:money}: overpaid by {gap:money}.",
     "El CIP {cip} pagó {paid} el {at} frente al total del pedido {total}: sobran {gap}."),
    ("CIP {cip:cip} paid {paid:money} on {at:lima} for an order in {currency:currency} of {total:money}; "
     "no SBS rate is known on or before {day:date}.",
     "El CIP {cip} pagó {paid} el {at} por un pedido en {currency} de {total}; "
     "no se conoce tipo de cambio SBS del {day} ni de antes."),
    ("CIP {cip:cip} paid {paid:money} on {at:lima} for an order in {currency:currency} of {total:money}; "
     "at the SBS sell rate {rate:number} of {rate_date:date} that is {converted:money}, outside the {pct:number}% tolerance.",
     "El CIP {cip} pagó {paid} el {at} por un pedido en {currency} de {total}; "
     "al tipo de cambio de venta SBS {rate} del {rate_date} equivale a {converted}, fuera de la tolerancia de {pct}%."),
    ("The store cancelled the order ({status:word}) but CIP {cip:cip} paid {paid:money} on {at:lima}; refund the buyer.",
     "La tienda anuló el pedido ({status|order}) pero el CIP {cip} pagó {paid} el {at}; hay que devolverle el dinero al comprador."),
    ("The order is cancelled and no CIP for it is paid.",
     "El pedido está anulado y ningún CIP suyo está pagado."),
    ("CIP {cip:cip} was paid and then reversed (extorno); no other CIP is paid.",
     "El CIP {cip} se pagó y luego se extornó; ningún otro CIP está pagado."),
    ("The store marks the order {status:word} but no CIP for reference {reference:text} is paid; statements cover up to "
     "{coverage:date}, past the grace day {grace_day:date} ({grace:number} business days).",
     "La tienda marca el pedido como {status|order} pero ningún CIP de la referencia {reference} está pagado; "
     "los estados de cuenta llegan hasta el {coverage}, pasado el día de gracia {grace_day} ({grace} días hábiles)."),
    ("CIP {cip:cip} is {status:word} and the order is not paid.",
     "El CIP {cip} está {status|cip} y el pedido no está pagado."),
    ("CIP {cip:cip} expired at {expiry:lima}, before the statements' coverage {coverage:lima} and the order is not paid.",
     "El CIP {cip} venció el {expiry}, antes de la cobertura de los estados de cuenta ({coverage}), y el pedido no está pagado."),
    ("Reference {reference:text} is shared with order {owner:text}, which takes its CIPs; this order is not matched.",
     "La referencia {reference} la comparte el pedido {owner}, que se queda con sus CIP; este pedido no se concilia."),
    ("The store marks the order {status:word} but no CIP is paid yet; grace until {grace_day:text}, "
     "statements cover up to {coverage:text}.",
     "La tienda marca el pedido como {status|order} pero aún no hay ningún CIP pagado; plazo de gracia hasta el {grace_day}, "
     "los estados de cuenta llegan hasta {coverage}."),
    ("No CIP for reference {reference:text} appears in the statements yet.",
     "Ningún CIP de la referencia {reference} aparece aún en los estados de cuenta."),
    ("CIP {cip:cip} is {status:word}; waiting for payment.",
     "El CIP {cip} está {status|cip}; se espera el pago."),
    ("Order {order:text} ({total:money}) was already paid by CIP {first:cip} on {first_at:lima}; CIP {cip:cip} paid "
     "{paid:money} again on {at:lima} (payment {rank:number} of {count:number}); refund the excess.",
     "El pedido {order} ({total}) ya lo pagó el CIP {first} el {first_at}; el CIP {cip} pagó {paid} otra vez el {at} "
     "(pago {rank} de {count}); hay que devolver el exceso."),
    ("CIP {cip:cip} (transaction code {code:text}) paid {paid:money} on {at:lima}; order {order:text} was paid by "
     "another method ({method:text}): the buyer paid twice.",
     "El CIP {cip} (código de transacción {code}) pagó {paid} el {at}; el pedido {order} se pagó por otro medio "
     "({method}): el comprador pagó dos veces."),
    ("CIP {cip:cip} (transaction code {code:text}) paid {paid:money} on {at:lima}; no order of store {store:text} has "
     "reference {reference:text}; a person must decide.",
     "El CIP {cip} (código de transacción {code}) pagó {paid} el {at}; ningún pedido de la tienda {store} tiene la "
     "referencia {reference}; debe decidirlo una persona."),
    ("CIP {cip:cip} paid {paid:money} on {at:lima}; the CIP carried no reference (transaction code), so no order can be "
     "linked to it; a person must decide.",
     "El CIP {cip} pagó {paid} el {at}; el CIP no trae referencia (código de transacción), así que no se puede vincular "
     "a ningún pedido; debe decidirlo una persona."),
]

# What may follow the main sentence, each after one space.
ADDENDA_ES: list[tuple[str, str]] = [
    ("Paid {count:number} times: see DUPLICATE_PAYMENT rows.",
     "Pagado {count} veces: ver las filas DUPLICATE_PAYMENT."),
    ("CIPs for this reference: {cips:text}.",
     "CIP de esta referencia: {cips|cips}."),
    ("The order's own cip field says {cip:text}.",
     "El campo cip del propio pedido dice {cip}."),
]

# Fixed words inside values: `no statement yet` for the coverage of a store with no statement.
_VALUES_ES = {"no statement yet": "aún sin estado de cuenta"}


def _compile(english: str) -> re.Pattern[str]:
    parts, last = [], 0
    for match in _FIELD.finditer(english):
        parts.append(re.escape(english[last:match.start()]))
        parts.append(_PIECES[match.group(2)].format(match.group(1)))
        last = match.end()
    parts.append(re.escape(english[last:]))
    return re.compile("".join(parts))


@lru_cache(maxsize=1)
def _shapes() -> tuple[list, list]:
    return ([(_compile(en), es) for en, es in SENTENCES_ES], [(_compile(en), es) for en, es in ADDENDA_ES])


def _cips_es(listing: str) -> str:
    """`50000001 paid, 50000002 expired` -> `50000001 pagado, 50000002 vencido`."""
    entries = []
    for entry in listing.split(", "):
        cip, _, status = entry.rpartition(" ")
        entries.append(f"{cip} {CIP_STATUS_ES.get(status, status)}" if cip else entry)
    return ", ".join(entries)


def _fill(spanish: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name, _, kind = match.group(1).partition("|")
        text = values[name]
        if kind == "order":
            return ORDER_STATUS_ES.get(text, text)
        if kind == "cip":
            return CIP_STATUS_ES.get(text, text)
        if kind == "cips":
            return _cips_es(text)
        return _VALUES_ES.get(text, text)

    return re.sub(r"\{([\w|]+)\}", value, spanish)


def _sentence_ends(text: str) -> list[int]:
    """Where a sentence of `text` may end: after a '.' that a space follows, or at the end (values
    such as order ids may hold '. ' too, so every candidate is tried)."""
    return [*(m.start() + 1 for m in re.finditer(r"\. ", text)), len(text)]


def _translate_es(evidence: str) -> str | None:
    sentences, addenda = _shapes()
    for pattern, spanish in sentences:
        for end in _sentence_ends(evidence):
            match = pattern.fullmatch(evidence, 0, end)
            if not match:
                continue
            out, rest = [_fill(spanish, match.groupdict())], evidence[end:]
            while rest.startswith(" "):
                found = next(((add, add_spanish) for add_pattern, add_spanish in addenda
                              if (add := _first_sentence_match(add_pattern, rest[1:]))), None)
                if found is None:
                    break
                out.append(_fill(found[1], found[0].groupdict()))
                rest = rest[1 + found[0].end():]
            if not rest:
                return " ".join(out)
    return None


def _first_sentence_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The shortest prefix of `text` that is the whole addendum."""
    for end in _sentence_ends(text):
        match = pattern.fullmatch(text, 0, end)
        if match:
            return match
    return None


def evidence_in(language: str, evidence: str | None) -> str | None:
    """The evidence in `language`; as written (English) when it is not made of known shapes."""
    if not evidence or language == "en":
        return evidence
    return _translate_es(evidence) or evidence
