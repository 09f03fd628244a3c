"""The steps of a move: what each one does and how a rollback undoes it, and the one table that lists them.

:class:`Move` is one move in progress (its manifest, and what the steps hand each other); its methods are the
steps' work and undo. :data:`TABLE` puts them in order with the label a person sees; :mod:`.executor` runs
the table, journaled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .. import git
from ..api import STEPS
from ..backends import EnvironmentSpec, RuntimeBackend
from ..errors import PalotError, SessionTransferFailed
from ..install import Progress
from ..paths import write_private
from ..ports import PortRange
from ..store import AgentRecord, EnvironmentRecord, ProjectRecord, Store
from .manifest import MigrationManifest, MigrationResult, ProcessRecord
from .plan import last_user_text, plan_move, resume_note, target_options


class MovingAgents(Protocol):
    """What a move needs from the agents (:class:`palot.agents.AgentService` is one)."""

    def managed(self, agent_ref: str, action: str) -> tuple[AgentRecord, EnvironmentRecord]: ...
    def resolve(self, agent_ref: str) -> str: ...
    def set_migrating(self, agent_id: str, on: bool) -> None: ...
    async def pause_for_move(self, agent_id: str) -> bool: ...
    async def moved(self, agent_id: str, status: str, *, note: str | None = None) -> None: ...
    def moved_back(self, agent_id: str, status: str) -> None: ...


def environment_spec(project: ProjectRecord, branch: str, base_commit: str, env_id: str,
                     options: dict[str, Any] | None, dev_ports: PortRange | None = None) -> EnvironmentSpec:
    """The spec of a move's environment: its branch arrives with the code (``branch_from_bundle``), and the
    agent keeps its dev-server ports."""
    return EnvironmentSpec(project_path=Path(project.path), project_id=project.id, project_name=project.name,
                           branch=branch, base_commit=base_commit, options=options or None, env_id=env_id,
                           branch_from_bundle=True, dev_ports=dev_ports)


class Move:
    """One move in progress: its manifest, and what its steps hand each other."""

    def __init__(self, manifest: MigrationManifest, project: ProjectRecord, *, store: Store,
                 backends: dict[str, RuntimeBackend], agents: MovingAgents, directory: Path,
                 progress: Progress) -> None:
        self.manifest = manifest
        self.project = project
        self.store = store
        self.backends = backends
        self.agents = agents
        self.dir = directory  # the bundle and the session export
        self.progress = progress
        self.step = "pause"
        self.resume_wanted: bool | None = None  # the mover's ``resume``: None is "if the move stopped a turn"
        self.resumed = False
        self.files_changed = 0
        self.export: bytes = b""
        self.target_env: EnvironmentRecord | None = None
        # Started right after the pause, because they depend on nothing the code steps make: the target's
        # provisioning (the slowest part: a container's OpenCode starting) and the conversation export.
        self._provisioning: asyncio.Task[None] | None = None
        self._exporting: asyncio.Task[bytes] | None = None

    @property
    def mid(self) -> str:
        return self.manifest.id

    async def stop_background(self) -> None:
        """Cancel and wait for background work, so a rollback never races a target still being made."""
        for task in (self._provisioning, self._exporting):
            if task is not None and not task.done():
                task.cancel()
            if task is not None:
                with contextlib.suppress(BaseException):
                    await task

    def save(self) -> None:
        self.store.update_migration(self.mid, manifest=self.manifest.model_dump(mode="json"))

    def _source(self) -> tuple[EnvironmentRecord, RuntimeBackend]:
        env = self.store.get_environment(self.manifest.source.environment_id)
        assert env is not None
        return env, self.backends[env.type]

    def _target(self) -> tuple[EnvironmentRecord, RuntimeBackend]:
        env = self.target_env or self.store.get_environment(self.manifest.target.environment_id)
        assert env is not None
        return env, self.backends[env.type]

    def _spec(self, env_id: str, options: dict[str, Any] | None,
              dev_ports: PortRange | None = None) -> EnvironmentSpec:
        m = self.manifest
        return environment_spec(self.project, m.git.branch, m.git.base_commit, env_id, options, dev_ports)

    # --- the work, before the commit point ------------------------------------

    async def pause(self) -> None:
        m = self.manifest
        m.session.was_busy = await self.agents.pause_for_move(m.agent_id)
        env, backend = self._source()
        m.environment.processes = [ProcessRecord.of(p) for p in await backend.processes(env)]
        # Dev servers stay reachable: their ports are published from the new container (on loopback).
        m.target.options = target_options(m.target.type, m.target.options, m.environment.processes)
        self.save()
        loop = asyncio.get_running_loop()
        self._exporting = loop.create_task(backend.export_session(env, m.session.id))
        self._provisioning = loop.create_task(self._provision())

    async def checkpoint(self) -> None:
        env, backend = self._source()
        head, snapshot = await backend.export_code(env, self.dir / self.manifest.git.bundle,
                                                   self.manifest.git.snapshot_ref)
        self.manifest.git.head_commit, self.manifest.git.snapshot_commit = head, snapshot
        self.manifest.git.remote_url = await git.remote_url(Path(self.project.path))
        self.save()

    async def export_state(self) -> None:
        assert self._exporting is not None
        data = await self._exporting
        try:
            parsed = json.loads(data)
            messages = parsed["messages"]
        except (ValueError, KeyError, TypeError) as e:
            raise SessionTransferFailed(f"`opencode export` printed something that is not a session: {data[:200]!r}",
                                        "check the OpenCode version (`palot doctor`)") from e
        path = self.dir / self.manifest.session.export
        write_private(path, data)
        self.export = data
        self.manifest.session.message_count = len(messages)
        self.manifest.session.last_prompt = last_user_text(messages)
        self.save()

    async def provision(self) -> None:
        assert self._provisioning is not None
        await self._provisioning

    async def _provision(self) -> None:
        m = self.manifest
        backend = self.backends[m.target.type]
        source, _ = self._source()
        env = await backend.provision(self._spec(m.target.environment_id, m.target.options,
                                                 PortRange.from_data(source.data)))
        data = dict(env.data)
        if m.environment.setup_script:
            data["setup_script"] = m.environment.setup_script
        # "migrating" until the commit point: a restart does not treat it as the agent's environment.
        env = env.model_copy(update={"state": "migrating", "data": data})
        self.store.add_environment(env)
        self.target_env = env
        m.target.directory = env.directory
        self.store.update_migration(self.mid, target_env_id=env.id)

    async def import_code(self) -> None:
        env, backend = self._target()
        await backend.import_code(env, self.dir / self.manifest.git.bundle, self.manifest.git.snapshot_ref)
        git_state = self.manifest.git
        assert git_state.snapshot_commit
        self.files_changed = len(await git.changed_paths(backend.host_path(env), git_state.base_commit,
                                                         git_state.snapshot_commit))

    async def import_session(self) -> None:
        env, backend = self._target()
        # From a thread: a long conversation's export is megabytes.
        data = self.export or await asyncio.to_thread((self.dir / self.manifest.session.export).read_bytes)
        await backend.import_session(env, data)
        client = backend.client_for(env)
        messages = await client.messages(self.manifest.session.id, env.directory)
        if len(messages) != self.manifest.session.message_count:
            raise SessionTransferFailed(f"the target has {len(messages)} messages of the conversation, "
                                        f"not {self.manifest.session.message_count}", "see the OpenCode log in the target")

    async def setup(self) -> None:
        env, backend = self._target()
        if self.manifest.environment.setup_script:
            await backend.run_setup(env, self.manifest.environment.setup_script)
        for p in self.manifest.environment.processes:
            await backend.start_process(env, p.info())

    # --- after the commit point -----------------------------------------------

    async def resume(self) -> None:
        m = self.manifest
        mig = self.store.get_migration(self.mid)
        if mig.state == "running":
            self.store.commit_migration(self.mid, m.agent_id, m.target.environment_id, m.source.environment_id)
        target_env, _ = self._target()
        m.resume_note = resume_note(m, target_env.directory)
        self.save()
        plan = plan_move(m, self.resume_wanted)
        if plan.send_note:
            m.session.resumed = True  # saved first: a restart never sends the note twice
            self.save()
        await self.agents.moved(m.agent_id, plan.status_after, note=m.resume_note if plan.send_note else None)
        self.resumed = m.session.resumed

    async def cleanup(self) -> None:
        m = self.manifest
        env, backend = self._source()
        processes = [p.info() for p in m.environment.processes]
        # Each part is idempotent and tolerant of what a crashed earlier run already removed.
        with contextlib.suppress(PalotError, OSError):
            await backend.stop_processes(env, processes)
        with contextlib.suppress(PalotError, OSError):
            client = backend.client_for(env)
            # The conversation lives on in the target; the source's copy would be a stale twin.
            await client.delete_session(m.session.id, env.directory)
            await client.dispose_instance(env.directory)
        with contextlib.suppress(PalotError):
            await git.delete_ref(backend.host_path(env), m.git.snapshot_ref)
        await backend.discard(env.id, self._spec(env.id, None))

    # --- undoing (before the commit point; each tolerant of what never happened) -----------------

    async def unpause(self) -> None:
        self.agents.moved_back(self.manifest.agent_id, plan_move(self.manifest, None).status_after)

    async def drop_snapshot(self) -> None:
        source = self.store.get_environment(self.store.get_migration(self.mid).source_env_id)
        if source is not None:
            with contextlib.suppress(PalotError):
                await git.delete_ref(self.backends[source.type].host_path(source), self.manifest.git.snapshot_ref)

    async def discard_target(self) -> None:
        m = self.manifest
        target_env = self.store.get_environment(m.target.environment_id)
        await self.backends[m.target.type].discard(m.target.environment_id,
                                                   self._spec(m.target.environment_id, m.target.options))
        if target_env is not None:
            self.store.update_environment(m.target.environment_id, state="discarded")

    async def drop_imported_session(self) -> None:
        # The imported copy of the conversation lives on the target's server: remove it there.
        target_env = self.store.get_environment(self.manifest.target.environment_id)
        if target_env is not None:
            with contextlib.suppress(PalotError):
                await self.backends[target_env.type].client_for(target_env).delete_session(
                    self.manifest.session.id, target_env.directory)

    def result(self, seconds: float) -> MigrationResult:
        m = self.manifest
        env, _ = self._target()
        return MigrationResult(
            migration_id=self.mid, agent_id=m.agent_id, source=m.source.type, target=m.target.type,
            state="completed", environment_id=env.id, directory=env.directory, branch=m.git.branch,
            messages=m.session.message_count, files_changed=self.files_changed,
            processes_restarted=[p.command for p in m.environment.processes], resumed=self.resumed,
            resume_note=m.resume_note, seconds=round(seconds, 3),
        )


@dataclass(frozen=True)
class Step:
    """One step of a move: what it tells a person while it runs ({source}/{target}: the environment types),
    its work, and how a rollback undoes it (None: nothing of it outlives the move)."""

    name: str
    label: str
    do: Callable[[Move], Awaitable[None]]
    undo: Callable[[Move], Awaitable[None]] | None = None

    def line(self, source: str, target: str) -> str:
        """``[4/9] creating the container``: the line a person sees when the step starts."""
        return f"[{STEPS.index(self.name) + 1}/{len(STEPS)}] " + self.label.format(source=source, target=target)


#: The move, step by step, in the order of :data:`palot.api.STEPS` (checked below).
TABLE: tuple[Step, ...] = (
    Step("pause", "pausing the agent", Move.pause, Move.unpause),
    Step("checkpoint", "bundling the code (commits, uncommitted and untracked files)", Move.checkpoint,
         Move.drop_snapshot),
    Step("export", "exporting the conversation and the running processes", Move.export_state),
    Step("provision", "creating the {target}", Move.provision, Move.discard_target),
    Step("import_code", "importing the code", Move.import_code),  # into the target: discarded with it
    Step("import_session", "importing the conversation", Move.import_session, Move.drop_imported_session),
    Step("setup", "running the setup script and restarting processes", Move.setup),
    Step("resume", "switching the agent over", Move.resume),  # the commit point: never undone, only finished
    Step("cleanup", "removing the old {source}", Move.cleanup),
)
assert tuple(s.name for s in TABLE) == STEPS, "the table has every step of api.STEPS, in order"
STEP = {s.name: s for s in TABLE}


def progress_line(step: str, source: str, target: str) -> str:
    """The line a person sees when ``step`` starts (see :meth:`Step.line`)."""
    return STEP[step].line(source, target)
