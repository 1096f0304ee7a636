"""App-level state shared by screens and widgets (the app holds it in reactives)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ConnectionKind = Literal["starting", "connecting", "connected", "unreachable", "stopping", "failed"]


@dataclass(frozen=True, slots=True)
class Connection:
    """What the status line says about the engine link."""

    kind: ConnectionKind
    url: str
    detail: str = ""
    local: bool = False
