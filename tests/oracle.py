"""A second, independent reconciler over a sandbox plan (docs/reconciliation.md, When each status
applies): what each planned item should reconcile to, judged from the plan in memory. Tests hold it
against the generator's intended labels and the pipeline; the package ships only the labels."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pagorecon_dagster.sandbox.generator import Calendar, Cip, Context, Order, StorePlan


def norm_ref(ref: str) -> str:
    ref = ref.strip()
    return (ref[1:] if ref.startswith("#") else ref).strip().upper()


def nth_business_after(calendar: Calendar, d: date, n: int) -> date:
    while n > 0:
        d += timedelta(days=1)
        n -= calendar.is_business(d)
    return d


@dataclass(frozen=True)
class PredictedItem:
    store_id: str
    reference: str
    status: str
    reason: str | None
    order: Order | None


def coverage(plan: StorePlan) -> datetime | None:
    """Latest date_payment or date_creation among the store's statement rows."""
    moments = [c.created for c in plan.cips] + [c.payment for c in plan.cips if c.payment]
    return max(moments) if moments else None


def predict(plan: StorePlan, ctx: Context, tolerance_pct: int = 1, grace_days: int = 2) -> list[PredictedItem]:
    """What the reconciliation should say about each planned item."""
    sid, cov = plan.store.id, coverage(plan)
    orders = {norm_ref(o.ref): o for o in plan.orders if o.pagoefectivo}
    other_method = {norm_ref(o.ref) for o in plan.orders if not o.pagoefectivo}
    cips: dict[str, list[Cip]] = defaultdict(list)
    for c in plan.cips:
        cips[norm_ref(c.sent_ref(plan.store))].append(c)
    items = []
    for ref in sorted(set(orders) | set(cips)):
        o, linked = orders.get(ref), cips.get(ref, [])
        paid = sorted((c for c in linked if c.final.state == "paid"), key=lambda c: (c.payment, c.cip))
        if o is None:
            reason = "ORDER_PAID_OTHER_METHOD" if ref in other_method else None
            items += [PredictedItem(sid, ref, "ORPHAN_PAYMENT", reason, None) for _ in paid]
            continue
        status = o.states[-1][1]
        if paid:
            first = ("PAID_CANCELLED_ORDER", None) if status == "cancelled" else judge(o, paid[0], ctx, tolerance_pct)
            items.append(PredictedItem(sid, ref, *first, o))
            items += [PredictedItem(sid, ref, "DUPLICATE_PAYMENT", None, o) for _ in paid[1:]]
            continue
        latest = max(linked, key=lambda c: (c.created, c.cip)) if linked else None
        marked_paid = status in ("paid", "refunded")
        if status == "cancelled":
            verdict = "CANCELLED_UNPAID"
        elif any(c.final.state == "reversed" for c in linked):
            verdict = "REVERSED"
        elif marked_paid and cov and nth_business_after(ctx.calendar, o.created.date(), grace_days) <= cov.date():
            verdict = "MISSING_PAYMENT"
        elif not marked_paid and latest and (latest.final.state in ("expired", "deleted") or latest.final.expiry < cov):
            verdict = "EXPIRED_UNPAID"
        else:
            verdict = "AWAITING_PAYMENT"
        items.append(PredictedItem(sid, ref, verdict, None, o))
    return items


def judge(o: Order, c: Cip, ctx: Context, tolerance_pct: int) -> tuple[str, str | None]:
    if c.currency == o.currency:
        diff = c.amount - o.total
        return ("MATCHED", None) if diff == 0 else ("AMOUNT_MISMATCH", "UNDERPAID" if diff < 0 else "OVERPAID")
    sell = ctx.fx.sell_on(c.payment.date())
    if sell is None:
        return "CURRENCY_MISMATCH", None
    # both sides in thousandths of a céntimo of the order currency, compared without floats
    if o.currency == "PEN":
        converted, total = c.amount * sell, o.total * 1000
    else:
        converted, total = c.amount * 1000, o.total * sell
    if abs(converted - total) * 100 <= total * tolerance_pct:
        return "MATCHED", "FX_CONVERTED"
    return "CURRENCY_MISMATCH", None
