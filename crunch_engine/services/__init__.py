"""Services: the logic workers run, with their dependencies passed in (testable)."""
