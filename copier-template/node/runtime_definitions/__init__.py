"""This node's callables: the ten slots of ``config/callables.env`` point here.

Each module starts as a thin layer over the engine's defaults
(``crunch_engine.slots.defaults``); edit these functions to make the competition yours.
The engine imports them from the node's folder at start and checks every signature
(``crunch config check``); a slot may accept any subset of its documented keyword
arguments (``crunch_engine/slots/spec.py``), sync or ``async``.
"""
