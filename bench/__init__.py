"""Spark's benchmark harness: ``python -m bench`` (or ``nox -s bench``) measures throughput,
latency, schedule lag, memory and start-up time of a real ``spark serve`` on loopback."""
