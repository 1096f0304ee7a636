"""The model server: one process per participant model, speaking the reference gRPC wire
format over a lean asyncio + hand-written HTTP/2 implementation (no grpcio in the process).

Run it with ``python -m crunch_engine.models.server --address HOST:PORT --code-dir DIR``.
"""
