"""The local model orchestrator: one model-server subprocess per submission, announced
over a CrunchDAO-compatible WebSocket once its gRPC health check answers SERVING.

Modules, one responsibility each: ``config`` (models.yml), ``watcher`` (polling the
models directory), ``environment`` (scrubbed environment, resource limits),
``venvs`` (per-requirements virtual environments), ``launcher`` (spawning and killing
one server process, its log), ``health`` (gRPC health probe), ``process`` (one model's
lifecycle), ``publisher`` (WebSocket), ``status`` (state.json) and ``service`` (ties
them together).
"""
