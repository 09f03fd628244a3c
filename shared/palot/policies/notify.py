"""Notifications: "needs you" (an agent waits on a person) and "done", said once, in every place set up.

Every notification goes on the service's event stream (MCP clients, editors and the notebook show it) and to
the sinks the settings turn on (the desktop, webhooks). Notifications of one kind that arrive within
``coalesce_seconds`` of the first are merged into one: ten agents finishing within a second make one
"10 agents are done", never ten pop-ups. Delivery to a sink never blocks the service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from .. import api
from .settings import SettingsFile

log = logging.getLogger(__name__)

Publish = Callable[[api.Event], None]


class Sink(Protocol):
    """A place notifications go besides the event stream (the desktop, a webhook)."""

    name: str

    def wanted(self, note: api.Notification) -> bool: ...

    async def deliver(self, note: api.Notification) -> None: ...


def merge(notes: list[api.Notification]) -> api.Notification:
    """One notification for several of one kind: what each says, one per line."""
    if len(notes) == 1:
        return notes[0]
    kind = notes[0].kind
    agent_ids = list(dict.fromkeys(a for n in notes for a in n.agent_ids))
    body = "\n".join(f"{n.title}" + (f": {n.body.splitlines()[0]}" if n.body else "") for n in notes)
    if len(agent_ids) <= 1 and len({n.reason for n in notes}) > 1:
        # One agent, several things at once (nearly out of budget, then stopped): the latest one says it.
        last = notes[-1]
        return last.model_copy(update={"body": body, "agent_ids": agent_ids, "time": notes[0].time})
    reasons = {n.reason for n in notes}
    count = len(agent_ids) or len(notes)
    if agent_ids:
        title = (f"{count} agents need you" if kind == "needs_you" else f"{count} agents are done") if count > 1 \
            else notes[-1].title
    else:
        title = f"{len(notes)} notifications"
    action = notes[0].action if len({n.action for n in notes}) == 1 else (
        "palot inbox" if reasons == {"permission"} else "palot agents list")
    return api.Notification(kind=kind, title=title, body=body, action=action,
                            reason=reasons.pop() if len(reasons) == 1 else "several", agent_ids=agent_ids,
                            time=notes[0].time)


class Notifier:
    """Collects notifications, merges those of one kind within a moment, and delivers them."""

    def __init__(self, settings: SettingsFile, publish: Publish) -> None:
        self.settings = settings
        self._publish = publish
        self.sinks: list[Sink] = []
        self._pending: dict[str, list[api.Notification]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent: int = 0  # notifications delivered (after merging), for status and benchmarks

    def notify(self, kind: str, reason: str, title: str, body: str = "", *, action: str | None = None,
               agent_ids: Iterable[str] = ()) -> None:
        """Say something to the person; merged with others of its ``kind`` that follow within a moment."""
        note = api.Notification(kind=kind, reason=reason, title=title, body=body, action=action,  # type: ignore[arg-type]
                                agent_ids=list(agent_ids))
        window = self.settings.current.notifications.coalesce_seconds
        self._pending.setdefault(kind, []).append(note)
        if window <= 0:
            self._flush(kind)
        elif kind not in self._timers:
            self._timers[kind] = asyncio.get_running_loop().call_later(window, self._flush, kind)

    def _flush(self, kind: str) -> None:
        timer = self._timers.pop(kind, None)
        if timer is not None:
            timer.cancel()
        notes = self._pending.pop(kind, [])
        if not notes:
            return
        note = merge(notes)
        self.sent += 1
        if note.kind in self.settings.current.notifications.editors.kinds or note.kind == "info":
            self._publish(api.Event(type=api.NOTIFICATION, agent_id=note.agent_ids[0] if note.agent_ids else None,
                                    notification=note, time=note.time))
        for sink in self.sinks:
            if sink.wanted(note):
                task = asyncio.get_running_loop().create_task(self._deliver(sink, note))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, sink: Sink, note: api.Notification) -> None:
        try:
            await sink.deliver(note)
        except Exception as e:  # a sink's failure is logged; it never stops the service or other sinks
            log.warning("could not deliver a notification to %s: %s", sink.name, e)

    async def close(self) -> None:
        """Deliver what is pending, then wait (briefly) for deliveries in flight."""
        for kind in list(self._pending):
            self._flush(kind)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
