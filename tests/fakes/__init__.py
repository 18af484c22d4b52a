"""Hand-written in-memory fakes of Spark's ports, for tests."""
