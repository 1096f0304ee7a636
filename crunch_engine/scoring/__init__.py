"""Scoring: proper scoring rules, rolling windows and ranking."""
