"""The service's event stream: OpenCode's and the core's events, read once, said as Palot-level events.

Every client of the service gets the same :class:`palot.api.Event` objects: the routing of an OpenCode
event to its agent (by session, or by environment for ``file.edited``) is done here, once, for every
front end. Each attached client has a bounded queue; a slow client loses its oldest events (counted),
never blocks the others, and can re-read the agents it shows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import api
from ..agents import AGENT_FILE, AGENT_REMOVED, AGENT_UPDATED
from ..agents.activity import part_activity
from ..errors import PalotError
from ..opencode import STREAM_CONNECTED, GlobalEvent, Part

if TYPE_CHECKING:
    from ..core import Palot

log = logging.getLogger(__name__)

_ACTIVITY = frozenset({"message.updated", "message.part.updated", "message.part.removed", "todo.updated"})


class ClientQueue:
    """One attached client's bounded queue of events."""

    def __init__(self, maxsize: int = 2000) -> None:
        self._queue: deque[api.Event] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self.lagged = 0
        self.closed = False

    def offer(self, event: api.Event) -> None:
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self.lagged += 1
        self._queue.append(event)
        self._ready.set()

    async def get(self, timeout: float) -> api.Event | None:
        """The next event, or None after ``timeout`` seconds (time for a heartbeat)."""
        if not self._queue:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except asyncio.TimeoutError:
                return None
        return self._queue.popleft() if self._queue else None


class EventBridge:
    """Listens to the core's hub and publishes :class:`palot.api.Event` to every attached client."""

    def __init__(self, palot: "Palot") -> None:
        self.palot = palot
        self.clients: set[ClientQueue] = set()
        self._known: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.published = 0
        # In-service readers of every event (the fleet policies), called in order before clients get it.
        self.listeners: list[Callable[[api.Event], None]] = []

    def start(self) -> None:
        self._known = {a.id for a in self.palot.agents.list(include_archived=True, include_external=False)}
        self.palot.hub.add_listener(self._on_event)

    def attach(self, replay: bool) -> ClientQueue:
        queue = ClientQueue()
        if replay:
            for agent in self.palot.agents.list():
                queue.offer(api.Event(type=api.AGENT_UPDATED, agent_id=agent.id, agent=agent))
        self.clients.add(queue)
        return queue

    def detach(self, queue: ClientQueue) -> None:
        queue.closed = True
        self.clients.discard(queue)

    def publish(self, event: api.Event) -> None:
        self.published += 1
        for listener in self.listeners:
            listener(event)
        for queue in tuple(self.clients):
            queue.offer(event)

    # --- translation ------------------------------------------------------------------------

    def _on_event(self, event: GlobalEvent) -> None:
        kind = event.type
        props = event.payload.properties
        if kind == AGENT_UPDATED and isinstance(props.get("agent"), dict):
            agent = api.Agent.model_validate(props["agent"])
            created = agent.id not in self._known
            self._known.add(agent.id)
            self.publish(api.Event(type=api.AGENT_CREATED if created else api.AGENT_UPDATED, agent_id=agent.id,
                                   agent=agent))
        elif kind == AGENT_REMOVED and isinstance(props.get("agentID"), str):
            self._known.discard(props["agentID"])
            self.publish(api.Event(type=api.AGENT_REMOVED, agent_id=props["agentID"]))
        elif kind == AGENT_FILE and isinstance(props.get("agentID"), str):
            self._spawn(self._file_changed(props["agentID"], str(props.get("path", "")),
                                           str(props.get("hostPath", ""))))
        elif kind in _ACTIVITY:
            self._activity(event)
        elif kind == "permission.asked":
            agent_id = self._agent_of(event)
            if agent_id is not None:
                patterns = props.get("patterns") if isinstance(props.get("patterns"), list) else []
                view = api.PermissionView(id=str(props.get("id", "")), permission=str(props.get("permission", "")),
                                          patterns=[str(p) for p in patterns],
                                          summary=api.permission_summary(str(props.get("permission", "")),
                                                                         [str(p) for p in patterns]))
                self.publish(api.Event(type=api.PERMISSION_ASKED, agent_id=agent_id, permission=view))
        elif kind == "permission.replied":
            agent_id = self._agent_of(event)
            if agent_id is not None:
                self.publish(api.Event(type=api.PERMISSION_ANSWERED, agent_id=agent_id,
                                       permission_id=str(props.get("requestID", "")), reply=str(props.get("reply", ""))))
        elif kind == STREAM_CONNECTED and props.get("reconnects") and not props.get("source"):
            self.publish(api.Event(type=api.RESYNC, message="the service reconnected to OpenCode"))

    def _agent_of(self, event: GlobalEvent) -> str | None:
        sid = event.session_id
        return self.palot.agents.agent_for_session(sid) if sid else None

    def _activity(self, event: GlobalEvent) -> None:
        agent_id = self._agent_of(event)
        if agent_id is None:
            return
        item = None
        raw = event.payload.properties.get("part")
        if event.type == "message.part.updated" and isinstance(raw, dict):
            try:
                line = part_activity(Part.model_validate(raw), None)
            except ValueError:
                line = None
            if line is not None:
                t, kind, verb, target, summary, state = line
                item = api.ActivityItem(index=-1, id=str(raw.get("id", "")), time=t, kind=kind, verb=verb,
                                        target=target, summary=summary, state=state)
        self.publish(api.Event(type=api.ACTIVITY, agent_id=agent_id, item=item))

    async def _file_changed(self, agent_id: str, path: str, host_path: str) -> None:
        ranges: list[tuple[int, int]] | None = None
        patch: str | None = None
        try:
            patch = (await self.palot.agents.diff(agent_id, path=path)).patch
            found = api.parse_hunks(patch).get(path)
            ranges = [r for h in (found.hunks if found else []) for r in h.changed_ranges()]
        except PalotError as e:
            log.info("no line ranges for %s of %s: %s", path, agent_id, e)
        # The patch goes along, so an editor shows the hunks without reading the diff again.
        self.publish(api.Event(type=api.FILE_CHANGED, agent_id=agent_id, path=path, host_path=host_path,
                               ranges=ranges, patch=patch))

    def _spawn(self, coro: "asyncio.Future[None] | object") -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
