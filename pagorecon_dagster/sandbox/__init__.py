"""Seeded sandbox data for demos and tests (see ``generator.generate``)."""
