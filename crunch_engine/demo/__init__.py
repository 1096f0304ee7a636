"""The demo challenge: a tracker base class and example models for the offline demo."""
