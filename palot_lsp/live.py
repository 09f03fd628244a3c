"""Agents and their changes to the files open in the editor, kept current from the Palot service's events.

``LiveChanges`` knows the workspace's agents (``client.list``, then the full
view in every ``agent.created``/``agent.updated`` event) and, for every open
file, each agent's hunks in it. ``agent.file`` says which agent changed which
file, with the service's diff of that file: when the file is open, its hunks
(what hovers and overlap warnings show) are taken from the event at once. A
file is read (``client.diff(agent, path=...)``, after a short debounce that
folds bursts into one read) when it opens, when an agent appears or completes,
and when an event came without a diff; an event that arrives during such a read
wins over the read. ``resync`` (the service restarted, or lost OpenCode for a
while) re-reads everything. Whenever what a file shows may have changed, ``on_file_changed(uri)``
is called; whenever an agent's status changes, ``on_status(agent, before)``; a
``notification`` (an agent needs a person, or something is done) goes to
``on_notification(note)``; whenever an agent's view changes or it is no longer shown, ``on_agent(id, view
or None)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from palot import api
from palot.api import Agent, Hunk, PalotError, parse_hunks
from palot.client import PalotClient

from .changes import (
    AgentChange,
    Overlap,
    PendingPermission,
    agent_roots,
    find_overlaps,
    is_shown,
    permission_for_file,
    relative_path,
)

log = logging.getLogger(__name__)


@dataclass
class OpenFile:
    uri: str
    path: str  # absolute, symlinks resolved


class LiveChanges:
    """Which agent changed which lines of each open file; see the module docstring."""

    def __init__(
        self,
        *,
        on_file_changed: Callable[[str], None],
        on_status: Callable[[Agent, Agent | None], None],
        on_notification: Callable[[api.Notification], None] | None = None,
        on_agent: Callable[[str, Agent | None], None] | None = None,
        debounce: float = 0.02,
        concurrency: int = 4,
    ) -> None:
        self.client: PalotClient | None = None
        self.on_file_changed = on_file_changed
        self.on_status = on_status
        self.on_notification = on_notification
        self.on_agent = on_agent
        self.debounce = debounce
        self.agents: dict[str, Agent] = {}
        self._roots: dict[str, tuple[str, str]] = {}  # agent id → its files on this machine and project, resolved
        self._files: dict[str, OpenFile] = {}
        self._hunks: dict[tuple[str, str], tuple[Hunk, ...]] = {}  # (agent id, relative path) → hunks
        self._pending: set[tuple[str, str]] = set()
        self._told: set[tuple[str, str]] = set()  # hunks an event gave while a read was under way
        self._flusher: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._limit = asyncio.Semaphore(concurrency)

    # --- lifecycle ----------------------------------------------------------

    async def start(self, client: PalotClient) -> None:
        """Follow the service's events; the stream starts with every agent's view (``replay``), so no update
        falls between loading the agents and following them."""
        self.client = client
        self._reader = asyncio.create_task(self._read(), name="palot-lsp-events")

    async def stop(self) -> None:
        for task in (self._reader, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reader = self._flusher = None

    @property
    def started(self) -> bool:
        return self._reader is not None

    # --- open files ---------------------------------------------------------

    def open(self, uri: str, path: str) -> None:
        self._files[uri] = OpenFile(uri, os.path.realpath(path))
        if self.started:
            self._refresh_file(uri)

    def close(self, uri: str) -> None:
        if self._files.pop(uri, None) is None:
            return
        still_open = {(a, relative_path(f.path, roots)) for a, roots in self._roots.items() for f in self._files.values()}
        for key in [k for k in self._hunks if k not in still_open]:
            del self._hunks[key]

    def is_open(self, uri: str) -> bool:
        return uri in self._files

    def uri_of(self, path: str) -> str | None:
        """The uri under which the editor has the file at ``path`` open, if it does."""
        real = os.path.realpath(path)
        return next((f.uri for f in self._files.values() if f.path == real), None)

    # --- queries (synchronous, from the cache) -------------------------------

    def changes(self, uri: str) -> list[AgentChange]:
        """Each shown agent's hunks in the file at ``uri`` (agents without changes there left out)."""
        file = self._files.get(uri)
        if file is None:
            return []
        out = []
        for agent in self.agents.values():
            rel = relative_path(file.path, self._roots[agent.id])
            hunks = self._hunks.get((agent.id, rel)) if rel is not None else None
            if rel is not None and hunks:
                out.append(AgentChange(agent, rel, hunks))
        out.sort(key=lambda c: (c.agent.created_at, c.agent.id))
        return out

    def overlaps(self, uri: str) -> list[Overlap]:
        return find_overlaps(self.changes(uri))

    def permissions(self, uri: str) -> list[PendingPermission]:
        """Pending permission requests of the workspace's agents that concern the file at ``uri``."""
        file = self._files.get(uri)
        if file is None:
            return []
        out = []
        for agent in self.agents.values():
            rel = relative_path(file.path, self._roots[agent.id]) if agent.permissions else None
            if rel is None:
                continue
            for permission in agent.permissions:
                # The api's view has no proposed diff: the request marks the file's first line.
                pending = permission_for_file(agent, permission, rel, None)
                if pending is not None:
                    out.append(pending)
        return out

    # --- updates ------------------------------------------------------------

    def track(self, agent: Agent) -> None:
        """Take in an agent (e.g. one just spawned) without waiting for its first event."""
        self._update(agent)

    async def _load_agents(self) -> None:
        assert self.client is not None
        try:
            agents = await self.client.list(include_external=False)
        except PalotError as e:
            log.warning("could not list agents: %s", e)
            return
        for agent in agents:
            self._update(agent, announce=False)
        for gone in [a for a in self.agents if a not in {x.id for x in agents}]:
            self._forget(gone)

    def _update(self, agent: Agent, *, announce: bool = True) -> None:
        before = self.agents.get(agent.id)
        if before is not None and agent.updated_at < before.updated_at:
            return  # an older view (e.g. a command's answer that arrived after the event of what followed)
        if not is_shown(agent):
            if before is not None:
                self._forget(agent.id)
                if announce:
                    self.on_status(agent, before)
            return
        self.agents[agent.id] = agent
        self._roots[agent.id] = agent_roots(agent)
        if self.on_agent is not None and agent != before:
            self.on_agent(agent.id, agent)
        if before is None:
            for uri in self._files:
                self._refresh_agent_file(agent, uri)
        elif before.status != agent.status and agent.status.value == "completed":
            # The final state of its files; a missed file.edited must not leave them stale.
            for uri in self._files:
                self._refresh_agent_file(agent, uri)
        if announce and (before is None or before.status != agent.status or before.error != agent.error):
            self.on_status(agent, before)
        if before is None or before.status != agent.status or before.permissions != agent.permissions:
            for uri in self._files:
                self.on_file_changed(uri)

    def _forget(self, agent_id: str) -> None:
        if self.agents.pop(agent_id, None) is not None and self.on_agent is not None:
            self.on_agent(agent_id, None)
        self._roots.pop(agent_id, None)
        for key in [k for k in self._hunks if k[0] == agent_id]:
            del self._hunks[key]
        for uri in self._files:
            self.on_file_changed(uri)

    async def _read(self) -> None:
        assert self.client is not None
        while True:
            try:
                async for event in self.client.events(replay=True):
                    try:
                        await self._on_event(event)
                    except PalotError as e:
                        log.info("could not follow %s: %s", event.type, e)
                    except Exception:  # one odd event must not stop the editor's updates
                        log.exception("could not handle %s", event.type)
            except PalotError as e:  # e.g. the service went away and could not be started again
                log.warning("lost the Palot service's events: %s", e)
                await asyncio.sleep(2.0)

    async def _on_event(self, event: api.Event) -> None:
        if event.type in (api.AGENT_CREATED, api.AGENT_UPDATED) and event.agent is not None:
            self._update(event.agent)
        elif event.type == api.AGENT_REMOVED and event.agent_id:
            if event.agent_id in self.agents:
                self._forget(event.agent_id)
        elif event.type == api.FILE_CHANGED and event.agent_id and event.path:
            self._on_file_edited(event.agent_id, event.path, event.ranges, event.patch)
        elif event.type in (api.PERMISSION_ASKED, api.PERMISSION_ANSWERED) and event.agent_id in self.agents:
            assert self.client is not None and event.agent_id is not None
            self._update(await self.client.get(event.agent_id))  # the agent's permissions, as the service has them
        elif event.type == api.NOTIFICATION and event.notification is not None:
            if self.on_notification is not None:
                self.on_notification(event.notification)
        elif event.type == api.RESYNC:
            await self._load_agents()
            for uri in self._files:
                self._refresh_file(uri)

    def _on_file_edited(self, agent_id: str, rel: str, ranges: list[tuple[int, int]] | None,
                        patch: str | None = None) -> None:
        """Agent ``agent_id`` changed ``rel`` (relative to its root): its hunks there, if the file is open, from
        the event's patch (else read again)."""
        if agent_id not in self.agents:
            return  # not one the editor shows (archived, another project's external session …)
        roots = self._roots[agent_id]
        if not any(relative_path(f.path, roots) == rel for f in self._files.values()):
            return
        if ranges == [] or patch is not None:  # the service read the diff: shown now, no read of ours
            found = parse_hunks(patch).get(rel) if patch else None
            self._told.add((agent_id, rel))
            self._set_hunks({(agent_id, rel): tuple(found.hunks) if found else ()})
            return
        self._schedule(agent_id, rel)

    # --- refreshing ---------------------------------------------------------

    def _refresh_file(self, uri: str) -> None:
        for agent in list(self.agents.values()):
            self._refresh_agent_file(agent, uri)

    def _refresh_agent_file(self, agent: Agent, uri: str) -> None:
        rel = relative_path(self._files[uri].path, self._roots[agent.id])
        if rel is not None:
            self._schedule(agent.id, rel)

    def _schedule(self, agent_id: str, rel: str) -> None:
        self._pending.add((agent_id, rel))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="palot-lsp-refresh")

    async def _flush(self) -> None:
        while self._pending:
            await asyncio.sleep(self.debounce)
            batch, self._pending, self._told = list(self._pending), set(), set()
            results = await asyncio.gather(*(self._read_hunks(agent_id, rel) for agent_id, rel in batch))
            # An event's hunks that came during the read are as new as the read, or newer: they stay.
            self._set_hunks({key: hunks for key, hunks in zip(batch, results)
                             if key[0] in self.agents and hunks is not None and key not in self._told})

    def _set_hunks(self, found: dict[tuple[str, str], tuple[Hunk, ...]]) -> None:
        """Take in agents' hunks in files (``()``: no change there); the files whose hunks changed are shown."""
        changed_rels: set[tuple[str, str]] = set()
        for key, hunks in found.items():
            if self._hunks.get(key, ()) != hunks:
                changed_rels.add(key)
                if hunks:
                    self._hunks[key] = hunks
                else:
                    self._hunks.pop(key, None)
        self._changed(changed_rels)

    def _changed(self, changed_rels: set[tuple[str, str]]) -> None:
        for uri, file in list(self._files.items()):
            if any(relative_path(file.path, self._roots[a]) == rel for a, rel in changed_rels if a in self._roots):
                self.on_file_changed(uri)

    async def _read_hunks(self, agent_id: str, rel: str) -> tuple[Hunk, ...] | None:
        assert self.client is not None
        async with self._limit:
            try:
                diff = await self.client.diff(agent_id, path=rel)
            except PalotError as e:
                log.info("could not read the diff of %s in %s: %s", rel, agent_id, e)
                return None
        found = parse_hunks(diff.patch).get(rel)
        return tuple(found.hunks) if found else ()
