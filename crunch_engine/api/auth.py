"""Auth tiers: public, read (optionally keyed) and admin; the key only in headers.

Compared with ``hmac.compare_digest`` (constant time). The reference also accepted the
key in the query string, which leaks it into logs and browser history: we never do.
"""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request, status

from crunch_engine.api.context import ApiContext, get_context

KEY_HEADER = "X-API-Key"


def presented_key(request: Request) -> str | None:
    key = request.headers.get(KEY_HEADER)
    if key:
        return key
    authorization = request.headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _key_matches(context: ApiContext, request: Request) -> bool:
    expected = context.settings.api_key
    given = presented_key(request)
    if expected is None or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def _unauthorized(request: Request) -> HTTPException:
    if presented_key(request) is None:
        message = (
            f"an API key is required: send it in the {KEY_HEADER} header "
            "or as 'Authorization: Bearer <key>'"
        )
    else:
        message = "the API key is not valid"
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


def require_read(request: Request, context: ApiContext = Depends(get_context)) -> None:
    """Non-public report endpoints: keyed only when CRUNCH_API_READ_AUTH=true."""
    settings = context.settings
    keyed = settings.api_key is not None and settings.api_read_auth
    if keyed and not _key_matches(context, request):
        raise _unauthorized(request)


def require_admin_read(request: Request, context: ApiContext = Depends(get_context)) -> None:
    """Control reads: open when no key is configured (local use), keyed otherwise."""
    if context.settings.api_key is not None and not _key_matches(context, request):
        raise _unauthorized(request)


def require_admin_action(request: Request, context: ApiContext = Depends(get_context)) -> None:
    """Control actions: always keyed; disabled outright when no key is configured."""
    if context.settings.api_key is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "process control is disabled: set CRUNCH_API_KEY to enable it",
        )
    if not _key_matches(context, request):
        raise _unauthorized(request)
