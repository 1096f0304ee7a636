"""Participant models: the wire protocol, the model server, the local orchestrator and
the engine's client."""
