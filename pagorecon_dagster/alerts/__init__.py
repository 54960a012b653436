"""Alerts computed per partition, kept in `alerts`, delivered to the log and a webhook."""
