"""Spark as a library and inside other services: the public API, embedding, custom sources."""
