"""Real Spark processes in real time: what only a running server can show."""
