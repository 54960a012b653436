"""Schedules and sensors that make the daily cycle run itself."""
