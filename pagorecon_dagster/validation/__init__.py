"""Pandera schemas: the single statement of what a clean input row is."""
