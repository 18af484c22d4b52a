"""Use cases: the operations Spark offers, over the ports."""
