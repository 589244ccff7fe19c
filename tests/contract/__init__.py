"""Contract tests: one test body, run against every implementation of a port."""
