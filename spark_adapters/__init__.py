"""Spark adapters: the technologies behind the core's ports."""
