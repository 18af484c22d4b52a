"""Contract suites: one set of tests run against each port's fake and its real adapter."""
