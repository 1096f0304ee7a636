"""Textual control center for crunch-control (`crunch tui`)."""
