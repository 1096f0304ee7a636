"""Async repositories: the only code that writes SQL. Writes are batched in one transaction."""
