"""Telling MCP clients when agents change.

One source, two ways out:

* ``ChangeFeed`` reads the Palot service's event stream (``client.events()``: agent created, updated,
  removed, activity, file changed, permission, move progress, resync) and publishes, throttled (at once
  after a quiet window, then at most once per window: ``throttle.py``), which resources changed on the
  server's ``SubscriptionBus``. Clients on the 2026-07-28 protocol receive them
  on a ``subscriptions/listen`` stream.
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
import warnings
from collections.abc import Callable
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import ResourcesListChanged, ResourceUpdated, ServerEvent, SubscriptionBus
from mcp_types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

from palot import api
from palot.client import PalotClient
from palot.errors import PalotError

from .throttle import Throttle

log = logging.getLogger(__name__)

AGENTS_URI = "palot://agents"
NOTIFICATIONS_URI = "palot://notifications"


def agent_uri(agent_id: str) -> str:
    return f"{AGENTS_URI}/{agent_id}"


def diff_uri(agent_id: str) -> str:
    return f"{AGENTS_URI}/{agent_id}/diff"


def activity_uri(agent_id: str) -> str:
    return f"{AGENTS_URI}/{agent_id}/activity"


def _uris(agent_id: str) -> tuple[str, ...]:
    return agent_uri(agent_id), activity_uri(agent_id), diff_uri(agent_id)


# Activity kinds that only talk: a finished item of any other kind (a tool) may have changed files.
_TALK = frozenset({"message", "thinking"})


class ChangeFeed:
    """Turns the service's events into resource change events on the bus: a resource quiet for ``window``
    seconds is announced at once, one that keeps changing at most once per window."""

    def __init__(self, client: PalotClient, bus: SubscriptionBus, *, window: float = 0.1,
                 on_note: Callable[[api.Notification], None] | None = None) -> None:
        self._client = client
        self._on_note = on_note  # the service's notifications ("needs you", "done"), said to the clients
        self._visible: set[str] = set()  # agents listed by palot://agents (not archived)
        self._statuses: dict[str, api.AgentStatus] = {}  # each agent's last status, to tell when it changes
        self._changes: Throttle[ServerEvent] = Throttle(window, bus.publish)
        self._reseed: asyncio.Task[None] | None = None

    async def seed(self) -> None:
        """Learn which agents palot://agents lists now, and their statuses (a missed one is learnt from its next
        update)."""
        try:
            agents = await self._client.list()
            self._visible = {a.id for a in agents}
            self._statuses = {a.id: a.status for a in agents}
        except PalotError as e:  # tools keep working; list changes are then judged from events alone
            log.warning("could not read the agents: %s", e)

    async def run(self) -> None:
        """Follow the service's events until cancelled (the client reconnects by itself)."""
        sending = asyncio.create_task(self._changes.run(), name="palot-mcp-changes")
        try:
            async for event in self._client.events():
                try:
                    self._on_event(event)
                except Exception:  # one odd event must not end notifications for the session
                    log.exception("could not handle event %s", event.type)
        except Exception:  # tools keep working without notifications; say why they stopped
            log.exception("resource change notifications stopped")
        finally:
            for task in (sending, self._reseed):
                if task is not None:
                    task.cancel()

    def _show(self, agent_id: str, visible: bool) -> None:
        if visible != (agent_id in self._visible):
            (self._visible.add if visible else self._visible.discard)(agent_id)
            self._changes.mark(ResourcesListChanged())

    def _on_event(self, event: api.Event) -> None:
        kind, agent_id = event.type, event.agent_id
        if kind == api.RESYNC:
            # The service restarted or lost OpenCode for a while: anything may have changed.
            self._changes.mark(ResourcesListChanged())
            self._mark(AGENTS_URI, *(u for a in sorted(self._visible) for u in _uris(a)))
            if self._reseed is None or self._reseed.done():
                self._reseed = asyncio.get_running_loop().create_task(self.seed(), name="palot-mcp-reseed")
            return
        if kind == api.NOTIFICATION and event.notification is not None:
            if self._on_note is not None:
                self._on_note(event.notification)
            self._mark(NOTIFICATIONS_URI)
        if agent_id is None:
            return
        if kind in (api.AGENT_CREATED, api.AGENT_UPDATED):
            self._show(agent_id, event.agent is None or event.agent.status != api.AgentStatus.ARCHIVED)
            if event.agent is not None and self._statuses.get(agent_id) != event.agent.status:
                # A new status (completed, waiting for a person …) is what a subscriber waits for: said at
                # once, even right after a token count's update of the same agent.
                self._statuses[agent_id] = event.agent.status
                self._changes.mark(ResourceUpdated(uri=agent_uri(agent_id)), urgent=True)
            self._mark(AGENTS_URI, *_uris(agent_id))
        elif kind == api.AGENT_REMOVED:
            self._statuses.pop(agent_id, None)
            self._show(agent_id, False)
            self._mark(AGENTS_URI, *_uris(agent_id))
        elif kind == api.ACTIVITY:
            self._mark(activity_uri(agent_id))
            item = event.item
            if item is not None and item.kind not in _TALK and item.state in ("completed", "error"):
                self._mark(diff_uri(agent_id))
        elif kind == api.FILE_CHANGED:
            self._mark(diff_uri(agent_id))
        elif kind in (api.PERMISSION_ASKED, api.PERMISSION_ANSWERED):
            self._mark(AGENTS_URI, agent_uri(agent_id))  # palot://agents counts the requests waiting (inbox)
        elif kind == api.MOVE_PROGRESS:
            self._mark(agent_uri(agent_id))

    def _mark(self, *uris: str) -> None:
        for uri in uris:
            self._changes.mark(ResourceUpdated(uri=uri))


# --- handshake-era clients -------------------------------------------------------


class LegacyChannel:
    """One handshake-era connection: forwards the bus events its client asked for, in order, deduplicated."""

    def __init__(self, session: ServerSession, bus: SubscriptionBus) -> None:
        self.session = session
        self.uris: set[str] = set()
        self._pending: dict[ServerEvent, None] = {}
        self._wake = asyncio.Event()
        self._unsubscribe: Callable[[], None] = bus.subscribe(self._offer)
        self._logging: set[asyncio.Task[None]] = set()
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

    def log(self, note: api.Notification) -> None:
        """A notification as ``notifications/message``: warning for "needs you", info for "done"."""
        level = "warning" if note.kind == "needs_you" else "info"
        data = {"kind": note.kind, "reason": note.reason, "title": note.title, "body": note.body,
                "action": note.action, "agent_ids": note.agent_ids}
        task = asyncio.get_running_loop().create_task(self._log(level, data), name="palot-mcp-log")
        self._logging.add(task)
        task.add_done_callback(self._logging.discard)

    async def _log(self, level: str, data: dict[str, Any]) -> None:
        try:
            with warnings.catch_warnings():  # deprecated on 2026-07-28 only; it is how handshake clients hear
                warnings.simplefilter("ignore")
                await self.session.send_log_message(level, data, logger="palot")  # type: ignore[arg-type]
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

    def notify(self, note: api.Notification) -> None:
        """Say a notification to every handshake-era client (on the 2026-07-28 protocol, log messages ride only
        the stream of a request that asked for them; those clients hear an update of palot://notifications)."""
        for channel in tuple(self._channels.values()):
            channel.log(note)

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
