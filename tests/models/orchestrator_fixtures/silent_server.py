"""A "model server" that accepts TCP connections on --address but never speaks gRPC.

The orchestrator must never announce it RUNNING (its port is open, its health is not).
"""

from __future__ import annotations

import argparse
import socket
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--hard-limit-seconds", default="30")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    host, _, port = args.address.rpartition(":")
    listener = socket.create_server((host, int(port)))
    held = []
    listener.settimeout(0.2)
    while True:
        try:
            connection, _ = listener.accept()
            held.append(connection)  # never answer
        except TimeoutError:
            time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(main())
