"""Palot's MCP front end: tools and resources over the Palot service, for any MCP client.

``build_server(client)`` gives an ``MCPServer`` using a ``palot.client.PalotClient`` (or, without one,
its own client of ``$PALOT_HOME``'s service, started when none runs); ``palot-mcp`` runs it on stdio or
streamable HTTP. ``ACTION_TOOLS`` maps every action of ``palot.api.ACTIONS`` to its tool. See README.md
in this folder.
"""

from .server import PalotMCPServer, build_server
from .tools import ACTION_TOOLS, TOOLS

__all__ = ["ACTION_TOOLS", "TOOLS", "PalotMCPServer", "build_server"]
