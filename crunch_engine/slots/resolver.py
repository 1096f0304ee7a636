"""Resolve ``package.module:attr`` paths into checked slot callables.

Every failure names the slot, the path, where the path came from, and the reason; the
engine never falls back to a default silently.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crunch_engine.slots.spec import SLOT_SPECS, SlotName

_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class SlotResolutionError(Exception):
    def __init__(self, slot: str, path: str, source: str, reason: str) -> None:
        super().__init__(f"{slot}={path} (from {source}): {reason}")
        self.slot, self.path, self.source, self.reason = slot, path, source, reason


@dataclass(frozen=True)
class ResolvedSlot:
    """A slot ready to call: ``await slot(**documented_arguments)``."""

    name: SlotName
    path: str
    source: str
    func: Callable[..., Any]
    accepted: frozenset[str] | None
    """The documented arguments the callable takes; None when it takes ``**kwargs``."""
    is_async: bool

    async def __call__(self, **arguments: Any) -> Any:
        if self.accepted is not None:
            arguments = {k: v for k, v in arguments.items() if k in self.accepted}
        result = self.func(**arguments)
        if self.is_async or inspect.isawaitable(result):
            result = await result
        return result

    def call_sync(self, **arguments: Any) -> Any:
        """For hot loops over sync slots (scoring); refuses coroutine functions."""
        if self.is_async:
            raise TypeError(f"{self.name} is async; use `await slot(...)`")
        if self.accepted is not None:
            arguments = {k: v for k, v in arguments.items() if k in self.accepted}
        return self.func(**arguments)


def import_path(path: str) -> Any:
    """Import ``package.module:attr`` (attr may be dotted, e.g. ``Class.method``)."""
    if not _PATH.match(path):
        raise ValueError("expected a dotted path of the form package.module:attr")
    module_name, _, attribute = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # the module itself raised while importing
        raise ValueError(
            f"importing module {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None
    return target


def check_signature(func: Callable[..., Any], documented: tuple[str, ...]) -> frozenset[str] | None:
    """Return the documented arguments ``func`` accepts (None = all, via ``**kwargs``).

    Raises ValueError when ``func`` requires something the engine does not pass.
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot inspect its signature: {exc}") from None
    accepted: set[str] = set()
    takes_kwargs = False
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            takes_kwargs = True
        elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        elif parameter.name in documented and parameter.kind is not parameter.POSITIONAL_ONLY:
            accepted.add(parameter.name)
        elif parameter.default is inspect.Parameter.empty:
            raise ValueError(
                f"parameter {parameter.name!r} is required but the engine passes only "
                f"{', '.join(documented)} (as keywords)"
            )
    return None if takes_kwargs else frozenset(accepted)


def resolve_slot(name: SlotName, path: str, source: str) -> ResolvedSlot:
    spec = SLOT_SPECS[name]
    try:
        target = import_path(path)
        if not callable(target):
            raise ValueError(f"{type(target).__name__} object is not callable")
        accepted = check_signature(target, spec.arguments)
    except ValueError as exc:
        raise SlotResolutionError(name, path, source, str(exc)) from None
    is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )
    return ResolvedSlot(name, path, source, target, accepted, is_async)
