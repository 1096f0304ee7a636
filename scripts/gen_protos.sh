#!/usr/bin/env bash
# Regenerate the committed *_pb2.py / *_pb2_grpc.py of the model wire protocol.
# Paths are relative to the repository root so the generated modules import each other
# as crunch_engine.models.protocol.* (no sys.path tricks, no name clash in the
# descriptor pool with other packages that ship a "commons.proto").
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
OUT=crunch_engine/models/protocol
"$PYTHON" -m grpc_tools.protoc -I . \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  "$OUT/commons.proto" "$OUT/dynamic_subclass.proto"
# The servicer/stub module of commons is empty (no service): drop it.
rm -f "$OUT/commons_pb2_grpc.py"
# Generated code is committed as produced, only marked for ruff and formatted by it so
# `ruff format` / `ruff check` of the repository stay clean and reproducible.
for f in "$OUT"/*_pb2.py "$OUT"/*_pb2_grpc.py "$OUT"/*_pb2.pyi; do
  { echo "# ruff: noqa"; cat "$f"; } > "$f.tmp" && mv "$f.tmp" "$f"
done
RUFF="${RUFF:-$(dirname "$PYTHON")/ruff}"
"$RUFF" format --quiet "$OUT"/*_pb2*.py "$OUT"/*_pb2.pyi
echo "generated: $(ls "$OUT"/*_pb2*.py* | tr '\n' ' ')"
