"""Canonical schema, async engine/session factory, migrations and repositories."""
