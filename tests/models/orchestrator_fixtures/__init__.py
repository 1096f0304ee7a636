"""Helpers, a stand-in model server and sample submissions for the orchestrator tests."""
