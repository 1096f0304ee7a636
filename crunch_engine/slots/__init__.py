"""The ten callable slots: names, documented arguments, resolution and the defaults."""

from crunch_engine.slots.spec import SLOT_SPECS, SlotName

__all__ = ["SLOT_SPECS", "SlotName"]
