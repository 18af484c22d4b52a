"""Unit tests: the core with fakes."""
