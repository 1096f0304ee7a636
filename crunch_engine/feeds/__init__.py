"""Market data: feed contracts, providers, the registry and tape-first ground truth."""
