"""Reusable widgets of the control center."""
