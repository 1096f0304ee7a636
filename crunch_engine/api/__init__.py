"""The HTTP API of ``crunch serve``: report endpoints (compatible with the Crunch web UI),
control endpoints over the supervisor, and the static web UI. See docs/api.md."""

from crunch_engine.api.app import create_app
from crunch_engine.api.context import ApiContext

__all__ = ["ApiContext", "create_app"]
