"""``PalotMCPServer``: the tools and resources on an ``MCPServer``, with Palot's errors turned into tool errors."""

from __future__ import annotations

import inspect
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp_types import CallToolResult, InputRequiredResult, SubscribeRequestParams, UnsubscribeRequestParams
from mcp_types import Resource as MCPResource
from pydantic import ValidationError

from palot import Palot, __version__
from palot.errors import PalotError

from .app import PalotApp
from .notifications import LegacyChannels
from .resources import Resources
from .tools import TOOLS, Tools

INSTRUCTIONS = """\
Palot runs OpenCode coding agents, each on its own git branch in its own environment (a git worktree by \
default), across all your projects. Spawn an agent with a prompt, follow it (wait_for_agent, get_activity with \
its cursor, or subscribe to palot://agents/{id}), answer its permission requests, review its diff, then apply \
it to your checkout, open a PR, archive it (keeps the branch) or destroy it. Agent ids look like ag_1a2b3c4d; a \
unique prefix or the agent's branch works too. Errors say what to do next."""


class PalotMCPServer(MCPServer[PalotApp]):
    """The Palot MCP server. ``build_server`` makes one."""

    def __init__(self, palot: Palot | None = None) -> None:
        bus = InMemorySubscriptionBus()
        self.app = PalotApp(palot, bus)
        self.channels = LegacyChannels(bus)
        super().__init__(
            name="palot", title="Palot", version=__version__, instructions=INSTRUCTIONS,
            lifespan=lambda _server: self.app.serving(), subscriptions=bus,
            middleware=[self.channels.middleware], log_level="WARNING",
        )
        # resources/subscribe exists only on the handshake protocol; MCPServer has no
        # decorator for it, so it goes on the low-level server it wraps.
        lowlevel = self._lowlevel_server
        lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, self.channels.subscribe)
        lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, self.channels.unsubscribe)

        tools = Tools(self.app)
        self._arguments: dict[str, frozenset[str]] = {}
        for spec in TOOLS:
            method = getattr(tools, spec.name)
            self.add_tool(method, name=spec.name, title=spec.title, description=inspect.cleandoc(method.__doc__ or ""),
                          annotations=spec.hints, structured_output=True)
            self._arguments[spec.name] = frozenset(
                name for name, p in inspect.signature(method, eval_str=True).parameters.items()
                if p.annotation is not Context)
        self.resources = Resources(self.app)
        self.resources.register(self)

    async def list_resources(self) -> list[MCPResource]:
        """The agent list, then one entry per agent."""
        return [*await super().list_resources(), *self.resources.listing()]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[PalotApp, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """Run a tool; every failure is a tool error whose message says what went wrong and what to do."""
        expected = self._arguments.get(name)
        if expected is None:
            raise ToolError(f"unknown tool '{name}' — list the tools (tools/list) and call one of them")
        unknown = sorted(set(arguments) - expected)
        if unknown:
            raise ToolError(f"{name} has no argument {', '.join(map(repr, unknown))} — "
                            f"its arguments are: {', '.join(sorted(expected)) or 'none'}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as e:
            raise _explain(name, e) from e.__cause__ or e


def _explain(tool: str, error: ToolError) -> ToolError:
    cause = error.__cause__
    if isinstance(cause, PalotError):
        return ToolError(f"{tool}: {cause}")
    if isinstance(cause, ValidationError):
        return ToolError(f"{tool}: invalid arguments: {_problems(cause)} — call it again with arguments that "
                         "match its input schema")
    if isinstance(error, UnexpectedToolError):
        # A bug, not bad input: the traceback goes to the server's log, never to the client.
        return UnexpectedToolError(f"{tool} failed unexpectedly ({type(cause).__name__}) — this is a bug in Palot; "
                                   "the palot-mcp log on stderr has the details")
    return error


def _problems(error: ValidationError) -> str:
    """One short line per argument: its name and the first thing wrong with it."""
    seen: dict[str, str] = {}
    for e in error.errors(include_url=False, include_context=False):
        argument = str(e["loc"][0]) if e["loc"] else "arguments"
        if argument not in seen:
            seen[argument] = "required" if e["type"] == "missing" else e["msg"][:1].lower() + e["msg"][1:]
    return "; ".join(f"{argument}: {problem}" for argument, problem in seen.items())


def build_server(palot: Palot | None = None) -> PalotMCPServer:
    """The Palot MCP server, around a started ``palot`` or, by default, its own ``Palot(attach_any=True)``."""
    return PalotMCPServer(palot)
