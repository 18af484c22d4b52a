"""Spark's command line, `spark`."""
