"""Slot resolution: every failure names the slot, the path, the source and the reason."""

from __future__ import annotations

import pytest

from crunch_engine.slots.resolver import SlotResolutionError, resolve_slot
from crunch_engine.slots.spec import SlotName

S = SlotName.SCORING_FUNCTION
P = "tests.slots.sample_slots.callables"


async def test_subset_signature_gets_only_what_it_accepts() -> None:
    slot = resolve_slot(S, f"{P}:score_subset", "test")
    assert slot.accepted == {"output", "ground_truth"}
    assert await slot(output={}, ground_truth={}, scope={}) == 0.0


async def test_kwargs_signature_gets_everything() -> None:
    slot = resolve_slot(S, f"{P}:score_kwargs", "test")
    assert slot.accepted is None
    assert await slot(output={}, ground_truth={}, scope={}) == 3.0


async def test_async_slot_is_awaited() -> None:
    slot = resolve_slot(S, f"{P}:score_async", "test")
    assert slot.is_async
    assert await slot(output={}, ground_truth={}, scope={}) == 1.0
    with pytest.raises(TypeError):
        slot.call_sync(output={}, ground_truth={}, scope={})


def test_dotted_attribute_and_bound_method() -> None:
    slot = resolve_slot(S, f"{P}:scorer.score", "test")
    assert slot.call_sync(output={}, ground_truth={}, scope={}) == 2.0


def test_optional_undocumented_parameter_is_allowed() -> None:
    assert resolve_slot(S, f"{P}:score_optional_extra", "test").accepted == {
        "output",
        "ground_truth",
    }


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("no_colon.module.attr", "package.module:attr"),
        ("not_a_module_xyz:f", "cannot import module 'not_a_module_xyz'"),
        (f"{P}:missing", "has no attribute 'missing'"),
        (f"{P}:NOT_CALLABLE", "not callable"),
        (f"{P}:score_needs_extra", "parameter 'weights' is required"),
        ("tests.slots.sample_slots.broken_import:f", "raised RuntimeError: this module is broken"),
    ],
)
def test_failures_are_explained(path: str, reason: str) -> None:
    with pytest.raises(SlotResolutionError) as caught:
        resolve_slot(S, path, "config/callables.env:3")
    error = caught.value
    assert error.slot == S and error.path == path and error.source == "config/callables.env:3"
    assert reason in error.reason
    assert str(S) in str(error) and path in str(error)
