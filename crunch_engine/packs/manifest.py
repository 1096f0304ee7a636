"""The pack manifest model: what a ``pack.json`` (and a merged spec) must contain."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crunch_engine.slots.spec import SlotName

SLUG = r"^[a-z0-9][a-z0-9_-]*$"
CALLABLE_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Schedule(_Strict):
    every_seconds: int = Field(gt=0, le=86_400, description="Fire on this grid of the clock.")


class ScheduledPredictionConfig(_Strict):
    id: str = Field(default="", max_length=64, description="Defaults to scope_key.")
    scope_key: str = Field(pattern=SLUG, max_length=128)
    scope_template: dict[str, Any]
    schedule: Schedule
    active: bool = True
    order: int = 0

    @model_validator(mode="after")
    def _default_id(self) -> ScheduledPredictionConfig:
        if not self.id:
            self.id = self.scope_key[:64]
        return self

    @field_validator("scope_template")
    @classmethod
    def _horizon(cls, template: dict[str, Any]) -> dict[str, Any]:
        horizon = template.get("horizon_seconds")
        if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon <= 0:
            raise ValueError(f"horizon_seconds must be a positive integer, got {horizon!r}")
        return template


class LeaderboardSpec(_Strict):
    key: str = Field(pattern=SLUG, max_length=64)
    scope_keys: list[str] = Field(min_length=1)


class ScoringSpec(_Strict):
    windows: dict[str, int] = Field(
        default_factory=lambda: {"recent": 86_400, "steady": 259_200, "anchor": 604_800},
        description="Rolling window name -> length in seconds.",
    )
    rank_by: str = "recent"
    direction: Literal["asc", "desc"] = "asc"
    leaderboards: list[LeaderboardSpec] = Field(default_factory=list)
    rule: str = "brier"
    """The rule SCORING_FUNCTION implements (crunch_engine/scoring/rules.py), or "custom"."""
    penalty: float | None = None
    """Score of an ABSENT / FAILED / TIMEOUT / INVALID prediction; default: the rule's
    worst score, so skipping a hard round never pays."""
    bounds: tuple[float, float] | None = None
    """Scores are clamped into these bounds for ranking; default: the rule's range."""

    @model_validator(mode="after")
    def _penalty_known(self) -> ScoringSpec:
        from crunch_engine.scoring.rules import RULES

        if self.rule != "custom" and self.rule not in RULES:
            raise ValueError(f"rule {self.rule!r} is not one of {[*RULES, 'custom']}")
        rule = RULES.get(self.rule)
        if self.bounds is None and rule is not None and rule.upper is not None:
            self.bounds = (rule.lower, rule.upper)
        if self.penalty is None:
            if self.bounds is None:
                raise ValueError(
                    f"rule {self.rule!r} is unbounded: set scoring.penalty and scoring.bounds"
                )
            self.penalty = self.bounds[1] if self.direction == "asc" else self.bounds[0]
        if self.bounds is not None and self.bounds[0] > self.bounds[1]:
            raise ValueError(f"bounds must be (low, high), got {self.bounds}")
        return self

    @field_validator("windows")
    @classmethod
    def _positive(cls, windows: dict[str, int]) -> dict[str, int]:
        if not windows:
            raise ValueError("at least one window is required")
        for name, seconds in windows.items():
            if not re.match(r"^[a-z][a-z0-9_]*$", name):
                raise ValueError(f"window name {name!r} must be lowercase letters, digits, _")
            if seconds <= 0:
                raise ValueError(f"window {name!r} must be longer than 0 s, got {seconds}")
        return windows

    @model_validator(mode="after")
    def _rank_by_known(self) -> ScoringSpec:
        if self.rank_by not in self.windows:
            known = list(self.windows)
            raise ValueError(f"rank_by {self.rank_by!r} is not one of the windows {known}")
        return self


class PackManifest(_Strict):
    id: str = Field(pattern=SLUG, max_length=64)
    description: str
    callables: dict[SlotName, str]
    scheduled_prediction_configs: list[ScheduledPredictionConfig] = Field(min_length=1)
    checkpoint_interval_seconds: int = Field(gt=0)
    scoring: ScoringSpec = Field(default_factory=ScoringSpec)

    @field_validator("callables")
    @classmethod
    def _all_slots(cls, callables: dict[SlotName, str]) -> dict[SlotName, str]:
        missing = [slot.value for slot in SlotName if slot not in callables]
        if missing:
            raise ValueError(f"every slot must be wired; missing: {', '.join(missing)}")
        for slot, path in callables.items():
            if not CALLABLE_PATH.match(path):
                raise ValueError(f"{slot.value}: {path!r} is not of the form package.module:attr")
        return callables

    @model_validator(mode="after")
    def _consistent(self) -> PackManifest:
        keys = [config.scope_key for config in self.scheduled_prediction_configs]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"duplicate scope_key in scheduled_prediction_configs: {duplicates}")
        if not self.scoring.leaderboards:
            self.scoring.leaderboards = [LeaderboardSpec(key="overall", scope_keys=keys)]
        for board in self.scoring.leaderboards:
            unknown = [key for key in board.scope_keys if key not in keys]
            if unknown:
                raise ValueError(f"leaderboard {board.key!r} names unknown scope keys {unknown}")
        return self

    @property
    def active_configs(self) -> list[ScheduledPredictionConfig]:
        configs = [c for c in self.scheduled_prediction_configs if c.active]
        return sorted(configs, key=lambda c: (c.order, c.scope_key))

    @property
    def every_seconds(self) -> int:
        """The shortest cycle among the active configs (what `packs list` shows)."""
        configs = self.active_configs or self.scheduled_prediction_configs
        return min(config.schedule.every_seconds for config in configs)


class PackSpec(_Strict):
    """A ``--spec`` file: any part of a pack, merged over it."""

    description: str | None = None
    callables: dict[SlotName, str] | None = None
    scheduled_prediction_configs: list[dict[str, Any]] | None = None
    checkpoint_interval_seconds: int | None = Field(default=None, gt=0)
    scoring: dict[str, Any] | None = None
