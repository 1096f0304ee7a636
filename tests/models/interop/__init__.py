"""Interoperability with CrunchDAO's reference client and server (each in its own venv)."""
