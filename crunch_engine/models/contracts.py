"""Types shared by the model server, the orchestrator, the client and the predict worker.

Wire names follow CrunchDAO's model orchestrator (see the reference protocol): model
states RUNNING / STOPPED / RECOVERING, failure codes, and the ModelState JSON fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class CallStatus(StrEnum):
    """Outcome of one call on one model, as the predict worker stores it."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"  # the model raised, returned something unencodable, or broke the protocol
    TIMEOUT = "TIMEOUT"  # deadline exceeded, unavailable, or busy
    ABSENT = "ABSENT"  # known but not called: not running, still connecting, or on cooldown


class WireState(StrEnum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    RECOVERING = "RECOVERING"


class FailureCode(StrEnum):
    BAD_IMPLEMENTATION = "BAD_IMPLEMENTATION"
    CONNECTION_FAILED = "CONNECTION_FAILED"
    MULTIPLE_FAILED = "MULTIPLE_FAILED"
    MULTIPLE_TIMEOUT = "MULTIPLE_TIMEOUT"


@dataclass(frozen=True, slots=True)
class ModelIdentity:
    """Who a model is (``infos`` of the wire ModelState)."""

    model_name: str
    cruncher_id: str = ""
    cruncher_name: str = ""
    cruncher_wallet_pubkey: str = ""
    cruncher_hotkey: str = ""


@dataclass(frozen=True, slots=True)
class ModelEndpoint:
    """One running deployment of a model, as announced by an orchestrator."""

    model_id: str
    deployment_id: str
    identity: ModelIdentity
    state: WireState
    ip: str
    port: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "model_id": self.model_id,
            "infos": {
                "model_name": self.identity.model_name,
                "cruncher_id": self.identity.cruncher_id,
                "cruncher_name": self.identity.cruncher_name,
                "cruncher_wallet_pubkey": self.identity.cruncher_wallet_pubkey,
                "cruncher_hotkey": self.identity.cruncher_hotkey,
            },
            "state": self.state.value,
            "ip": self.ip,
            "port": self.port,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ModelEndpoint:
        infos = data.get("infos") or {}
        return cls(
            model_id=str(data["model_id"]),
            deployment_id=str(data["deployment_id"]),
            identity=ModelIdentity(
                model_name=str(infos.get("model_name") or data["model_id"]),
                cruncher_id=str(infos.get("cruncher_id") or ""),
                cruncher_name=str(infos.get("cruncher_name") or ""),
                cruncher_wallet_pubkey=str(infos.get("cruncher_wallet_pubkey") or ""),
                cruncher_hotkey=str(infos.get("cruncher_hotkey") or ""),
            ),
            state=WireState(str(data["state"])),
            ip=str(data["ip"]),
            port=int(data["port"]),
        )


@dataclass(slots=True)
class CallResult:
    """One model's answer to one call. ``exec_time_us`` is microseconds (never ms)."""

    model_id: str
    status: CallStatus
    result: Any = None
    exec_time_us: int = 0
    detail: str | None = None
    """Why it failed: the model's own exception message is kept, not reduced to FAILED."""
    deployment_id: str | None = None


@dataclass(slots=True)
class ModelHealth:
    """Rolling health of one model, kept by the client and stored by the predict worker."""

    model_id: str
    deployment_id: str | None = None
    latencies_us: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    consecutive_failures: int = 0
    last_error: str | None = None
    restarts: int = 0
