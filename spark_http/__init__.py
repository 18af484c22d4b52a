"""Spark's REST API on Litestar."""
