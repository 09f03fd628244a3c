"""Streamable HTTP on loopback, behind a bearer token.

The server binds 127.0.0.1 only. Every request must carry
``Authorization: Bearer <token>``; a missing or wrong token gets 401. The
token comes from ``$PALOT_MCP_TOKEN`` or is generated for the run and printed
once on stderr, so the person starting the server can give it to the client.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
import socket
import sys
from typing import TextIO

import uvicorn
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .server import PalotMCPServer

TOKEN_ENV = "PALOT_MCP_TOKEN"
HOST = "127.0.0.1"
DEFAULT_PORT = 8765
PATH = "/mcp"


class BearerTokenGuard:
    """ASGI wrapper: an HTTP request without the right bearer token gets 401 and goes no further."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, credential = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), self._token)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._authorized(scope):
            response = JSONResponse(
                {"error": "invalid_token",
                 "error_description": "missing or wrong bearer token: send `Authorization: Bearer <token>` with "
                                      f"the token palot-mcp printed at start, or the value of ${TOKEN_ENV}"},
                status_code=401, headers={"WWW-Authenticate": 'Bearer realm="palot-mcp", error="invalid_token"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def token_from_env() -> tuple[str, bool]:
    """The token, and whether it was generated (rather than taken from ``$PALOT_MCP_TOKEN``)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    return (token, False) if token else (secrets.token_urlsafe(32), True)


async def serve_http(server: PalotMCPServer, *, port: int = DEFAULT_PORT, out: TextIO = sys.stderr) -> None:
    """Serve until interrupted; says on ``out`` where, and how to get the token, once it is ready."""
    token, generated = token_from_env()
    app = BearerTokenGuard(server.streamable_http_app(streamable_http_path=PATH, host=HOST), token)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as e:
        sock.close()
        raise SystemExit(f"palot-mcp: cannot listen on {HOST}:{port}: {e.strerror} — pick another --port") from e
    url = f"http://{HOST}:{sock.getsockname()[1]}{PATH}"
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    # The service is reached first, so a failure is reported plainly rather than as a lifespan traceback.
    async with server.app.serving():
        serving = asyncio.create_task(uv.serve(sockets=[sock]))
        while not uv.started and not serving.done():
            await asyncio.sleep(0.05)
        if uv.started:
            how = (f"generated for this run (set ${TOKEN_ENV} to choose your own): {token}" if generated
                   else f"the value of ${TOKEN_ENV}")
            print(f"palot-mcp: MCP over streamable HTTP at {url}\n"
                  f"palot-mcp: clients send `Authorization: Bearer <token>`; the token is {how}", file=out, flush=True)
        await serving
