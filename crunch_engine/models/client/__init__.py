"""The engine's model client (grpc.aio): discovers models through an orchestrator's
WebSocket (or static endpoints), runs Setup once per deployment and fans calls out.

    client = ModelClient(base_classname="crunch_engine.demo.tracker.TrackerBase")
    await client.connect_orchestrator("127.0.0.1", 9091, "my-crunch")
    results = await client.call("predict", kwargs={"asset": "BTC", "horizon_seconds": 60})
"""

from crunch_engine.models.client.channel import ModelChannel, SetupError
from crunch_engine.models.client.discovery import OrchestratorError, OrchestratorLink
from crunch_engine.models.client.model_client import ModelClient

__all__ = ["ModelChannel", "ModelClient", "OrchestratorError", "OrchestratorLink", "SetupError"]
