"""Adapter tests: real adapters against real local things."""
