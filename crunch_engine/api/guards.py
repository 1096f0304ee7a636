"""Refuse input no backend can store before it reaches a query: NUL characters.

PostgreSQL text cannot hold U+0000, so a `%00` in any query parameter would surface as
a database error (a 500) deep in a handler. One check at the edge turns it into a 400
naming the problem, for every endpoint at once.
"""

from __future__ import annotations

import json
from urllib.parse import unquote_to_bytes

from crunch_engine.api.cache import ASGIApp, Receive, Scope, Send


class RejectNulCharacters:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            body = json.dumps(
                {"detail": "NUL characters (%00) are not allowed in the path or query"}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def _has_nul(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    if b"\x00" in query or (b"%" in query and b"\x00" in unquote_to_bytes(query)):
        return True
    return "\x00" in scope.get("path", "")
