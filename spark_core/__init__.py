"""Spark's core: the domain, its ports and use cases. Pure Python; knows no technology."""
