"""Refunds: from request to confirmed payout, exactly once, by the original route."""
