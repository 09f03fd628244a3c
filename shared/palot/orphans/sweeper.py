"""Orphans (``palot gc``): what Palot made that no agent record owns any more, and removing it safely.

Only Palot's own things are looked at: directories under Palot's data dir (worktrees, environment files,
move leftovers and locks), the relay-socket directories of environments this home recorded, ``palot/*``
branches of the projects Palot knows, and containers and volumes with Palot's labels (of this home, or of
an environment this home recorded). Each orphan says why it is one, its size, and whether it holds work —
unmerged commits, uncommitted changes — with the exact command that keeps that work. Removal takes only
the safe ones unless forced; an orphan that cannot be removed says why and the rest go on.

The kinds are found by :mod:`.local` (this machine's files and branches) and :mod:`.remote` (the container
engine, the cloud); this module decides what is live, scans in order, and removes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .. import api
from ..backends.cloud import CloudBackend
from ..backends.container import ContainerBackend
from ..errors import PalotError
from . import local, remote
from .found import LIVE_STATES, Found, Scope

if TYPE_CHECKING:
    from ..core import Palot
    from ..policies.housekeeping import Hold


class Sweeper:
    """Finds and removes orphans of one Palot home."""

    def __init__(self, palot: "Palot", hold: "Hold | None" = None) -> None:
        self.palot = palot
        # The service's per-agent lock: archiving a record whose environment is gone never races a
        # prompt, a move or an auto-archive of the same agent.
        self._hold = hold or _unlocked
        self.store = palot.store
        self.paths = palot.paths

    def _scope(self) -> Scope:
        """What the records own now."""
        envs = self.store.list_environments()
        moving = self.store.list_migrations(state=["running", "committed"])
        # A move's target is journaled before it is made: it is live already.
        live = {e.id for e in envs if e.state in LIVE_STATES} | {
            str(m.manifest.get("target", {}).get("environment_id") or "") for m in moving}
        container = self.palot.backends.get("container")
        if isinstance(container, ContainerBackend):
            live |= container.warm_ids()  # started ahead of need by this service: not orphans
        known = {e.id for e in envs} | {m.target_env_id for m in self.store.list_migrations() if m.target_env_id}
        return Scope(paths=self.paths, store=self.store, envs=envs, live=live - {""}, known=known,
                     busy=self.palot.agents.spawning or bool(moving))

    async def scan(self) -> tuple[list[Found], list[str]]:
        """Every orphan, in the order they can be removed (a worktree before its branch, a container before
        its volume), and what could not be checked."""
        scope = self._scope()
        found: list[Found] = []
        unchecked: list[str] = []
        found += await self._records_without_environment()
        found += await local.worktrees(scope)
        found += await local.environment_files(scope)
        engine_found, why = await remote.containers_and_volumes(scope)
        found += engine_found
        if why:
            unchecked.append(why)
        found += await local.relay_sockets(scope)
        cloud = self.palot.backends.get("cloud")
        if isinstance(cloud, CloudBackend):
            cloud_found, why = await remote.cloud(scope, cloud)
            found += cloud_found
            if why:
                unchecked.append(why)
        found += await local.moves(scope)
        found += await local.locks(scope)
        found += await local.branches(scope, self.palot.agents.reserved_branches())
        return found, unchecked

    async def _records_without_environment(self) -> list[Found]:
        found: list[Found] = []
        for rec, env, project in self.store.list_agents_with_environments(include_archived=False):
            if env is None or env.state != "active" or env.type not in ("worktree", "container"):
                continue
            try:
                state = await self.palot.backends[env.type].status(env)
            except PalotError:
                continue  # the engine is unreachable: that says nothing about the container
            if state != "missing":
                continue

            async def archive(agent_id: str = rec.id) -> None:
                async with self._hold(agent_id, "gc"):
                    await self.palot.agents.archive(agent_id)

            found.append(Found(api.Orphan(
                kind="record", name=rec.id, project=project.path if project else None, size=0,
                why=f"agent '{rec.title}' is recorded in a {env.type} that is gone ({env.directory})",
                safe=True, keep=None), archive))
        return found

    async def run(self, *, yes: bool = False, force: bool = False) -> api.GcReport:
        """Scan, and with ``yes`` remove the safe orphans (every one with ``force``)."""
        found, unchecked = await self.scan()
        report = api.GcReport(removing=yes, unchecked=unchecked)
        for item in found:
            orphan = item.orphan
            if yes and (orphan.safe or force):
                try:
                    await item.remove()
                    orphan.removed = True
                    report.removed += 1
                    report.freed += orphan.size or 0
                except Exception as e:  # noqa: BLE001 - one failure must not stop the rest
                    orphan.error = str(e)[:300] or type(e).__name__
            report.orphans.append(orphan)
        if yes and report.removed:
            self.store.audit("gc", removed=[f"{o.kind}:{o.name}" for o in report.orphans if o.removed],
                             forced=force)
        return report


@contextlib.asynccontextmanager
async def _unlocked(agent_id: str, action: str) -> AsyncIterator[str]:
    """No lock (outside the service, where nothing else acts on the agent)."""
    yield agent_id


def summary(report: api.GcReport) -> dict[str, Any]:
    """Counts for a notification: orphans, safe ones, bytes."""
    return {"orphans": len(report.orphans), "safe": sum(o.safe for o in report.orphans),
            "bytes": sum(o.size or 0 for o in report.orphans)}
