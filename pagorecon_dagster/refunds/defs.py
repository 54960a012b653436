"""Refunds' Dagster definitions: the `refunds` asset (intake, part of the main job) and the
`refund_payouts` asset (group `refunds`), the `refund_payout` job and the sensor that starts it."""

import dagster as dg

from pagorecon_dagster.config import Settings
from pagorecon_dagster.refunds.assets import refund_payout_job, refund_payouts, refunds
from pagorecon_dagster.refunds.sensors import refund_payout_sensor


def build(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[refunds, refund_payouts], jobs=[refund_payout_job], sensors=[refund_payout_sensor])
