"""Robustness: crashes and restarts, hostile sources, API fuzzing and load."""
