"""Shops whose orders pagorecon pulls from their API into landing/orders/<store_id>/."""
