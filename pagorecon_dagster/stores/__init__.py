"""Store connections: orders pulled from a shop's own API into `landing/orders/<store_id>/`."""
