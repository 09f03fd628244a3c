"""Telling MCP clients when agents change.

One source, two ways out:

* ``ChangeFeed`` reads the core's event hub (``palot.agent.updated`` /
  ``palot.agent.removed`` / ``palot.agent.file``, and the OpenCode events of
  each agent's session)
  and publishes, debounced, which resources changed on the server's
  ``SubscriptionBus``. Clients on the 2026-07-28 protocol receive them on a
  ``subscriptions/listen`` stream.
* Clients on the handshake protocol (Claude Desktop, Cursor, VS Code, the
  Inspector) subscribe with ``resources/subscribe``. ``LegacyChannels`` keeps
  one ``LegacyChannel`` per such connection, listening on the same bus and
  sending ``notifications/resources/updated`` for the URIs its client
  subscribed to, and ``notifications/resources/list_changed`` to everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import ResourcesListChanged, ResourceUpdated, ServerEvent, SubscriptionBus
from mcp_types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

from palot import Palot
from palot.agents import AGENT_FILE, AGENT_REMOVED, AGENT_UPDATED
from palot.opencode import GlobalEvent

log = logging.getLogger(__name__)

AGENTS_URI = "palot://agents"


def agent_uri(agent_id: str) -> str:
    return f"{AGENTS_URI}/{agent_id}"


def diff_uri(agent_id: str) -> str:
    return f"{AGENTS_URI}/{agent_id}/diff"


def activity_uri(agent_id: str) -> str:
    return f"{AGENTS_URI}/{agent_id}/activity"


# OpenCode events that change what an agent's activity shows, and what its diff shows (file edits come
# as the core's AGENT_FILE, which names the agent: directories do not, every container's is /workspace).
_ACTIVITY_EVENTS = frozenset({"message.updated", "message.part.updated", "message.part.removed", "todo.updated"})
_DIFF_EVENTS = frozenset({"session.diff"})
_SESSION_LIST_EVENTS = frozenset({"session.created", "session.deleted"})


class ChangeFeed:
    """Turns the hub's events into resource change events on the bus, coalesced per ``debounce`` window."""

    def __init__(self, palot: Palot, bus: SubscriptionBus, *, debounce: float = 0.1) -> None:
        self._palot = palot
        self._bus = bus
        self._debounce = debounce
        self._visible: set[str] = set()  # agents listed by palot://agents (not archived)
        self._by_session: dict[str, str] = {}
        self._dirty: dict[str, None] = {}  # ordered set of URIs to announce
        self._list_changed = False
        self._flush: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Follow the hub until cancelled."""
        with self._palot.hub.subscribe(replay=False, maxsize=10_000) as sub:
            try:
                # Seeded after subscribing, so no change falls between the two.
                for agent in self._palot.agents.list(include_archived=True):
                    self._track(agent.id, agent.session_id)
                    if agent.status.value != "archived":
                        self._visible.add(agent.id)
                async for event in sub:
                    try:
                        self._on_event(event)
                    except Exception:  # one odd event must not end notifications for the session
                        log.exception("could not handle event %s", event.type)
            except Exception:  # tools keep working without notifications; say why they stopped
                log.exception("resource change notifications stopped")
            finally:
                if self._flush is not None:
                    self._flush.cancel()

    def _track(self, agent_id: str, session_id: str | None) -> None:
        if session_id:
            self._by_session[session_id] = agent_id

    def _on_event(self, event: GlobalEvent) -> None:
        kind = event.type
        props = event.payload.properties
        if kind == AGENT_UPDATED:
            agent_id = str(props.get("agentID"))
            self._track(agent_id, props.get("sessionID"))
            visible = (props.get("agent") or {}).get("status") != "archived"
            if visible != (agent_id in self._visible):
                (self._visible.add if visible else self._visible.discard)(agent_id)
                self._list_changed = True
            self._mark(AGENTS_URI, agent_uri(agent_id), activity_uri(agent_id), diff_uri(agent_id))
        elif kind == AGENT_REMOVED:
            agent_id = str(props.get("agentID"))
            self._by_session.pop(str(props.get("sessionID")), None)
            if agent_id in self._visible:
                self._visible.discard(agent_id)
                self._list_changed = True
            self._mark(AGENTS_URI, agent_uri(agent_id), activity_uri(agent_id), diff_uri(agent_id))
        elif kind == AGENT_FILE:
            self._mark(diff_uri(str(props.get("agentID"))))
        else:
            sid = event.session_id
            owner = self._by_session.get(sid) if sid else None
            if owner is None:
                if kind in _SESSION_LIST_EVENTS and sid:
                    # An OpenCode session Palot did not start appears in (or leaves) the agent list.
                    self._list_changed = True
                    self._mark(AGENTS_URI)
                return
            if kind in _ACTIVITY_EVENTS:
                self._mark(activity_uri(owner))
            if kind in _DIFF_EVENTS or _finished_tool(props):
                self._mark(diff_uri(owner))

    def _mark(self, *uris: str) -> None:
        for uri in uris:
            self._dirty[uri] = None
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._publish(), name="palot-mcp-changes")

    async def _publish(self) -> None:
        await asyncio.sleep(self._debounce)
        dirty, self._dirty = self._dirty, {}
        list_changed, self._list_changed = self._list_changed, False
        if list_changed:
            await self._bus.publish(ResourcesListChanged())
        for uri in dirty:
            await self._bus.publish(ResourceUpdated(uri=uri))


def _finished_tool(props: dict[str, Any]) -> bool:
    """A tool part that just completed or failed: whatever it did to the files is done."""
    part = props.get("part")
    if not isinstance(part, dict) or part.get("type") != "tool":
        return False
    state = part.get("state")
    return isinstance(state, dict) and state.get("status") in ("completed", "error")


# --- handshake-era clients -------------------------------------------------------


class LegacyChannel:
    """One handshake-era connection: forwards the bus events its client asked for, in order, deduplicated."""

    def __init__(self, session: ServerSession, bus: SubscriptionBus) -> None:
        self.session = session
        self.uris: set[str] = set()
        self._pending: dict[ServerEvent, None] = {}
        self._wake = asyncio.Event()
        self._unsubscribe: Callable[[], None] = bus.subscribe(self._offer)
        self._task = asyncio.get_running_loop().create_task(self._send(), name="palot-mcp-legacy-channel")

    def _offer(self, event: ServerEvent) -> None:
        if isinstance(event, ResourcesListChanged) or (isinstance(event, ResourceUpdated) and event.uri in self.uris):
            self._pending[event] = None
            self._wake.set()

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, {}
            for event in pending:
                try:
                    if isinstance(event, ResourceUpdated):
                        await self.session.send_resource_updated(event.uri)
                    else:
                        await self.session.send_resource_list_changed()
                except Exception as e:  # the client went away; the connection's teardown closes this channel
                    log.debug("could not notify a client: %s", e)

    def close(self) -> None:
        self._unsubscribe()
        self._task.cancel()


def _connection_of(session: ServerSession) -> Any:
    # The SDK keeps a session's Connection private; it is the one stable identity of a
    # handshake-era client across its requests, and its exit_stack is the SDK's
    # per-connection teardown hook. Without it, each session stands for itself.
    return getattr(session, "_connection", session)


class LegacyChannels:
    """``resources/subscribe`` / ``unsubscribe`` for handshake-era clients, and their notification channels."""

    def __init__(self, bus: SubscriptionBus) -> None:
        self._bus = bus
        self._channels: dict[int, LegacyChannel] = {}

    def channel(self, session: ServerSession) -> LegacyChannel:
        """The connection's channel, opened on first use and closed with the connection."""
        connection = _connection_of(session)
        key = id(connection)
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = LegacyChannel(session, self._bus)
            exit_stack = getattr(connection, "exit_stack", None)
            if isinstance(exit_stack, contextlib.AsyncExitStack):
                exit_stack.callback(self._close, key)
        return channel

    def _close(self, key: int) -> None:
        channel = self._channels.pop(key, None)
        if channel is not None:
            channel.close()

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """On ``initialize``: open the client's channel and advertise ``resources.listChanged``.

        The SDK derives ``listChanged`` from options only its own runners pass; Palot
        does send list changes to handshake-era clients, so it says so.
        """
        result = await call_next(ctx)
        if ctx.method == "initialize" and isinstance(result, dict):
            resources = (result.get("capabilities") or {}).get("resources")
            if isinstance(resources, dict):
                resources["listChanged"] = True
            self.channel(ctx.session)
        return result

    async def subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        self.channel(ctx.session).uris.add(str(params.uri))
        return EmptyResult()

    async def unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        self.channel(ctx.session).uris.discard(str(params.uri))
        return EmptyResult()
