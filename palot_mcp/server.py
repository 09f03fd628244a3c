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

from palot.client import PalotClient, __version__
from palot.errors import PalotError

from .app import PalotApp
from .arguments import argument_names, tool_function
from .notifications import LegacyChannels
from .resources import Resources
from .tools import TOOLS, Tools

#: Argument names tools took before they used the API's names; still accepted, mapped to the new name.
LEGACY_ARGUMENTS = {"agent_id": "agent"}

INSTRUCTIONS = """\
Palot runs OpenCode coding agents, each on its own git branch in its own environment (a git worktree by \
default), across all your projects. Spawn an agent with a prompt, follow it (wait_for_agent, get_activity with \
its cursor, or subscribe to palot://agents/{id}), answer its permission requests, review its diff, then apply \
it to your checkout, open a PR, move it to a container or the cloud, archive it (keeps the branch) or destroy it. \
list_inbox shows every permission request waiting on a person across agents (reply_inbox answers many at once); \
set_budget caps an agent's spend; palot://agents and service_status show today's spend and the inbox count. \
Prompt templates (list_templates, save_template) are reusable prompts with {variables}: spawn_agent with \
`template` and `vars` instead of a prompt. \
Tools take an agent as `agent`: its id (like ag_1a2b3c4d), a unique prefix of it, or its branch. Errors say what \
to do next."""


class PalotMCPServer(MCPServer[PalotApp]):
    """The Palot MCP server. ``build_server`` makes one."""

    def __init__(self, client: PalotClient | None = None) -> None:
        bus = InMemorySubscriptionBus()
        self.app = PalotApp(client, bus)
        self.channels = LegacyChannels(bus)
        self.app.on_note = self.channels.notify
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
            fn = tool_function(spec.action, method, spec.overrides)
            self.add_tool(fn, name=spec.name, title=spec.title, description=inspect.cleandoc(method.__doc__ or ""),
                          annotations=spec.hints, structured_output=True)
            self._arguments[spec.name] = argument_names(fn)
        self.resources = Resources(self.app)
        self.resources.register(self)

    async def list_resources(self) -> list[MCPResource]:
        """The agent list, then one entry per agent."""
        return [*await super().list_resources(), *await self.resources.listing()]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[PalotApp, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """Run a tool; every failure is a tool error whose message says what went wrong and what to do."""
        expected = self._arguments.get(name)
        if expected is None:
            raise ToolError(f"unknown tool '{name}' — list the tools (tools/list) and call one of them")
        arguments = _legacy(name, dict(arguments), expected)
        unknown = sorted(set(arguments) - expected)
        if unknown:
            raise ToolError(f"{name} has no argument {', '.join(map(repr, unknown))} — "
                            f"its arguments are: {', '.join(sorted(expected)) or 'none'}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as e:
            raise _explain(name, e) from e.__cause__ or e


def _legacy(tool: str, arguments: dict[str, Any], expected: frozenset[str]) -> dict[str, Any]:
    """Arguments under their old names, renamed (a client that learnt the tools before keeps working)."""
    for old, new in LEGACY_ARGUMENTS.items():
        if old in arguments and old not in expected and new in expected:
            if new in arguments:
                raise ToolError(f"{tool}: '{old}' is the old name of '{new}' — pass only '{new}'")
            arguments[new] = arguments.pop(old)
    return arguments


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
    """One short line per argument: where in it (``options.cpus``) and the first thing wrong with it."""
    seen: dict[str, tuple[str, str]] = {}
    for e in error.errors(include_url=False, include_context=False):
        argument = str(e["loc"][0]) if e["loc"] else "arguments"
        if argument not in seen:
            msg = e["msg"].removeprefix("Value error, ")  # a request model's own check says it in full
            problem = "required" if e["type"] == "missing" else msg[:1].lower() + msg[1:]
            seen[argument] = (_where(e["loc"]) or argument, problem)
    return "; ".join(f"{where}: {problem}" for where, problem in seen.values())


def _where(loc: tuple[int | str, ...]) -> str:
    """``options.gpus`` from a validation error's location, without pydantic's union branch tags
    (``ContainerOptions``, ``list[...]``), which name types, not arguments."""
    parts = [str(p) for p in loc[:1]]
    parts += [str(p) for p in loc[1:] if isinstance(p, int) or (p.isidentifier() and not p[:1].isupper())]
    return ".".join(parts)


def build_server(client: PalotClient | None = None) -> PalotMCPServer:
    """The Palot MCP server, using ``client`` or, by default, its own ``PalotClient()`` of ``$PALOT_HOME``
    (which starts the Palot service when none runs)."""
    return PalotMCPServer(client)
