"""The event hub: one upstream subscription, fanned out to any number of subscribers.

Each subscriber has a bounded queue. When a subscriber falls behind, its
oldest events are dropped (and counted in ``lagged``), never the newest, so a
slow subscriber neither blocks the others nor loses the latest state; it can
always re-read ``EventHub.snapshot()``. Late subscribers first receive a replay
of the current state (sessions, statuses, pending permissions, and whatever
snapshot providers such as the agent service add).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

from .opencode import STREAM_CONNECTED, STREAM_DISCONNECTED, GlobalEvent, PermissionRequest, SessionStatus
from .opencode.models import EventPayload

log = logging.getLogger(__name__)

Listener = Callable[[GlobalEvent], None]
SnapshotProvider = Callable[[], Iterable[GlobalEvent]]


def make_event(type: str, directory: str | None = None, **properties: object) -> GlobalEvent:
    """Build an event in OpenCode's global shape (used for Palot's own ``palot.*`` events)."""
    return GlobalEvent(directory=directory, payload=EventPayload(type=type, properties=dict(properties)))


def event_source(event: GlobalEvent) -> str | None:
    """The extra source an event came from (the id of the environment whose own server sent it), or None
    for the shared server's events. Directories do not tell environments apart: every container and
    cloud environment is ``/workspace``."""
    source = (event.model_extra or {}).get("palot_source")
    return source if isinstance(source, str) else None


@dataclass
class HubState:
    """What the hub knows now, from the events it has seen."""

    connected: bool = False
    statuses: dict[str, SessionStatus] = field(default_factory=dict)
    permissions: dict[str, PermissionRequest] = field(default_factory=dict)
    directories: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # session → the extra source its events come from
    events_seen: int = 0


class Subscription:
    """A subscriber's bounded view of the hub; iterate it with ``async for``."""

    def __init__(
        self,
        hub: "EventHub",
        *,
        directory: str | None,
        session_id: str | None,
        types: frozenset[str] | None,
        maxsize: int,
    ) -> None:
        self._hub = hub
        self.directory = directory
        self.session_id = session_id
        self.types = types
        self._queue: deque[GlobalEvent] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self.lagged = 0
        self.closed = False

    def matches(self, event: GlobalEvent) -> bool:
        if self.types is not None and event.type not in self.types:
            return False
        if self.directory is not None and event.directory not in (None, self.directory):
            return False
        if self.session_id is not None:
            sid = event.session_id
            if sid is not None:
                return sid == self.session_id
            # Events without a session (file.edited …) belong to the session's directory on the session's
            # server (every container's directory is /workspace); stream events (no session, no directory)
            # reach everyone.
            state = self._hub.state
            return event.directory is None or (event.directory == state.directories.get(self.session_id)
                                               and event_source(event) == state.sources.get(self.session_id))
        return True

    def _offer(self, event: GlobalEvent) -> None:
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self.lagged += 1
        self._queue.append(event)
        self._ready.set()

    async def get(self, timeout: float | None = None) -> GlobalEvent:
        """The next event; ``asyncio.TimeoutError`` after ``timeout`` seconds."""
        while not self._queue:
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            if timeout is None:
                await self._ready.wait()
            else:
                await asyncio.wait_for(self._ready.wait(), timeout)
        return self._queue.popleft()

    def pending(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self.closed = True
        self._ready.set()
        self._hub._subscribers.discard(self)

    def __aiter__(self) -> AsyncIterator[GlobalEvent]:
        return self

    async def __anext__(self) -> GlobalEvent:
        return await self.get()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventHub:
    """Fans one upstream event source out to many subscribers, keeping the current state."""

    def __init__(self, source: Callable[[], AsyncIterable[GlobalEvent]]) -> None:
        self._source = source
        self._subscribers: set[Subscription] = set()
        self._listeners: list[Listener] = []
        self._snapshot_providers: list[SnapshotProvider] = []
        self._task: asyncio.Task[None] | None = None
        self._extra: dict[str, asyncio.Task[None]] = {}
        self.state = HubState()
        self._connected = asyncio.Event()

    async def start(self) -> None:
        """Start reading upstream; returns once the stream is connected (or after 10 s)."""
        if self._task is None:
            self._task = asyncio.create_task(self._pump(), name="palot-event-hub")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 10)

    async def stop(self) -> None:
        for name in list(self._extra):
            await self.remove_source(name)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sub in list(self._subscribers):
            sub.close()

    def add_source(self, name: str, source: Callable[[], AsyncIterable[GlobalEvent]]) -> None:
        """Also read another upstream (e.g. the OpenCode server inside a container environment).

        Its events carry ``name`` (see :func:`event_source`); its stream events also carry it as the
        ``source`` property, so they do not change the primary connection state.
        """
        if name not in self._extra:
            self._extra[name] = asyncio.create_task(self._pump(source, name), name=f"palot-event-source-{name}")

    async def remove_source(self, name: str) -> None:
        task = self._extra.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` synchronously for every event, before subscribers see it."""
        self._listeners.append(listener)

    def add_snapshot_provider(self, provider: SnapshotProvider) -> None:
        """Add events replayed to every new subscriber (e.g. one per agent)."""
        self._snapshot_providers.append(provider)

    def subscribe(
        self,
        *,
        directory: str | None = None,
        session_id: str | None = None,
        types: Iterable[str] | None = None,
        maxsize: int = 1000,
        replay: bool = True,
    ) -> Subscription:
        """A new subscription, optionally filtered by directory, session and event types."""
        sub = Subscription(
            self, directory=directory, session_id=session_id,
            types=frozenset(types) if types is not None else None, maxsize=maxsize,
        )
        if replay:
            # The replay is delivered whole, whatever maxsize: dropping part of it would lose current state.
            sub._queue.extend(event for event in self.snapshot() if sub.matches(event))
            if sub._queue:
                sub._ready.set()
        self._subscribers.add(sub)
        return sub

    def snapshot(self) -> list[GlobalEvent]:
        """The current state as events: statuses, pending permissions, then providers' events."""
        events: list[GlobalEvent] = []
        for sid, status in self.state.statuses.items():
            events.append(make_event("session.status", self.state.directories.get(sid), sessionID=sid,
                                     status=status.model_dump(exclude_none=True)))
        for perm in self.state.permissions.values():
            events.append(make_event("permission.asked", self.state.directories.get(perm.sessionID),
                                     **perm.model_dump(exclude_none=True)))
        for provider in self._snapshot_providers:
            events.extend(provider())
        return events

    def publish(self, event: GlobalEvent) -> None:
        """Update state, call listeners, and offer the event to every matching subscriber."""
        try:
            self._track(event)
        except Exception:  # an event Palot cannot read must not stop the stream for everyone
            log.exception("could not track event %s", event.type)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a faulty listener must not stop the stream for everyone
                log.exception("event listener failed on %s", event.type)
        for sub in tuple(self._subscribers):
            if sub.matches(event):
                sub._offer(event)

    def _track(self, event: GlobalEvent) -> None:
        st = self.state
        st.events_seen += 1
        props = event.payload.properties
        sid = event.session_id
        if sid and event.directory:
            st.directories[sid] = event.directory
        if sid and event_source(event):
            st.sources[sid] = event_source(event)  # type: ignore[assignment]
        kind = event.type
        if kind in (STREAM_CONNECTED, STREAM_DISCONNECTED) and props.get("source"):
            return  # an extra source's connection, not the shared server's
        if kind == STREAM_CONNECTED:
            st.connected = True
            self._connected.set()
        elif kind == STREAM_DISCONNECTED:
            st.connected = False
            self._connected.clear()
            # Whatever was busy is unknown until the stream is back; listeners resync then.
            st.statuses.clear()
        elif kind == "session.status" and sid:
            status = SessionStatus.model_validate(props.get("status", {"type": "idle"}))
            if status.type == "idle":
                st.statuses.pop(sid, None)
            else:
                st.statuses[sid] = status
        elif kind == "session.idle" and sid:
            st.statuses.pop(sid, None)
        elif kind == "permission.asked":
            with contextlib.suppress(ValueError):
                perm = PermissionRequest.model_validate(props)
                st.permissions[perm.id] = perm
        elif kind == "permission.replied":
            st.permissions.pop(str(props.get("requestID")), None)
        elif kind == "session.deleted" and sid:
            st.statuses.pop(sid, None)
            for pid in [p.id for p in st.permissions.values() if p.sessionID == sid]:
                del st.permissions[pid]

    async def _pump(self, source: Callable[[], AsyncIterable[GlobalEvent]] | None = None,
                    name: str | None = None) -> None:
        async for event in (source or self._source)():
            if name is not None:
                event.palot_source = name  # type: ignore[attr-defined]  # kept as a model extra
                if event.type in (STREAM_CONNECTED, STREAM_DISCONNECTED):
                    event.payload.properties["source"] = name
            self.publish(event)
