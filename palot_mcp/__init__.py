"""Palot's MCP front end: tools and resources over the core, for any MCP client.

``build_server(palot)`` gives an ``MCPServer`` around a started ``Palot`` (or,
without one, around its own ``Palot(attach_any=True)``); ``palot-mcp`` runs it
on stdio or streamable HTTP. See README.md in this folder.
"""

from .server import PalotMCPServer, build_server
from .tools import TOOLS

__all__ = ["TOOLS", "PalotMCPServer", "build_server"]
