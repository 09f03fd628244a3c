"""``palot-mcp``: the Palot MCP server, on stdio (default) or streamable HTTP on loopback."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from palot.errors import PalotError

from .http import DEFAULT_PORT, TOKEN_ENV, serve_http
from .server import PalotMCPServer, build_server


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="palot-mcp",
        description="Palot's MCP server: spawn, watch, steer and review OpenCode agents from an AI assistant. "
                    "It uses the Palot service of $PALOT_HOME, and starts it when it is not running.",
    )
    p.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                   help="stdio (default; the client starts palot-mcp) or streamable HTTP on 127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"HTTP port on 127.0.0.1 (default {DEFAULT_PORT}; 0 picks a free one). "
                        f"Clients need the bearer token: ${TOKEN_ENV}, or the one printed at start")
    p.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="log level on stderr (default WARNING)")
    return p


async def _serve(server: PalotMCPServer, transport: str, port: int) -> None:
    if transport == "http":
        await serve_http(server, port=port)
        return
    # The service is reached before the first message is read, so a failure is reported plainly.
    async with server.app.serving():
        await server.run_stdio_async()


def _palot_error(exc: BaseException) -> PalotError | None:
    if isinstance(exc, PalotError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        if (found := _palot_error(inner)) is not None:
            return found
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # stdout is the protocol on stdio: everything else goes to stderr.
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="palot-mcp %(levelname)s %(name)s: %(message)s")
    try:
        # Built before the loop runs: registering the tools is CPU work (their JSON schemas), not I/O.
        asyncio.run(_serve(build_server(), args.transport, args.port))
    except KeyboardInterrupt:
        return 130
    except BaseException as e:  # noqa: BLE001 - reported plainly below, or re-raised
        error = _palot_error(e)
        if error is None:
            raise
        print(f"palot-mcp: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
