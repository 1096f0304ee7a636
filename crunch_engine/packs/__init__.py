"""Packs: JSON manifests wiring the ten slots, the prediction schedules and scoring."""
