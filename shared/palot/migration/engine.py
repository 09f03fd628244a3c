"""The migration engine: move an agent to another environment, step by journaled step.

pause → checkpoint → export → provision → import_code → import_session → setup → resume → cleanup

The steps are one table (``_TABLE``: name, work, undo) run by a journaled loop; the decisions along the
way (ports, resume, statuses, what a restart does) are the pure functions of :mod:`.plan`. Every step is journaled in the store before and after it runs. ``resume``
starts by switching the agent to the target in one transaction (the commit
point). A crash before that point is rolled back on the next start (the
target is discarded, the agent is where it was); a crash after it is
finished (resume note, source clean-up). The target's id is chosen and
stored before the first step, so a rollback finds it however far it got;
that lets provisioning and the conversation export start in the
background right after the pause (their steps wait for them), which
takes the container's start-up off the critical path. The source environment is only
touched by ``cleanup``, after the commit, so nothing the agent wrote can be
lost at any point.
"""

from __future__ import annotations

import asyncio
import dataclasses
import contextlib
import fcntl
import functools
import json
import logging
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from .. import git
from ..backends import EnvironmentSpec, RuntimeBackend
from ..errors import (
    InvalidInput,
    InvalidState,
    MigrationFailed,
    MigrationUnfinished,
    PalotError,
    SessionTransferFailed,
)
from ..install import Progress, quiet
from ..paths import PalotPaths, write_private
from ..ports import PortRange
from ..store import AgentRecord, EnvironmentRecord, MigrationRecord, ProjectRecord, Store
from .manifest import (
    STEPS,
    EnvironmentRef,
    EnvironmentState,
    GitState,
    MigrationManifest,
    MigrationResult,
    ProcessRecord,
    SessionState,
)
from .plan import UNDOABLE, decide_recovery, plan_move, progress_line, steps_left, target_options

log = logging.getLogger(__name__)
T = TypeVar("T")


class MovingAgents(Protocol):
    """What the engine needs from the agents (:class:`palot.agents.AgentService` is one)."""

    def managed(self, agent_ref: str, action: str) -> tuple[AgentRecord, EnvironmentRecord]: ...
    def resolve(self, agent_ref: str) -> str: ...
    def set_migrating(self, agent_id: str, on: bool) -> None: ...
    async def pause_for_move(self, agent_id: str) -> bool: ...
    async def moved(self, agent_id: str, status: str, *, note: str | None = None) -> None: ...
    def moved_back(self, agent_id: str, status: str) -> None: ...


class MigrationEngine:
    """Moves agents between environment tiers; see the module docstring for the protocol."""

    def __init__(self, paths: PalotPaths, store: Store, agents: MovingAgents,
                 backends: dict[str, RuntimeBackend]) -> None:
        self.paths = paths
        self.store = store
        self.agents = agents
        self.backends = backends
        self.root = paths.migrations

    # --- public -------------------------------------------------------------

    async def move(
        self,
        agent_ref: str,
        target: str,
        *,
        options: dict[str, Any] | None = None,
        resume: bool | None = None,
        progress: Progress = quiet,
    ) -> MigrationResult:
        """Move the agent into a new environment of type ``target``, with its code, history and conversation.

        Everything is checked before anything changes. ``resume`` sends the agent a note to carry on
        (default: only when the move stopped a turn). ``options`` are the target tier's.
        """
        started = time.monotonic()
        rec, env = self.agents.managed(agent_ref, "move")
        if target not in self.backends:
            raise InvalidInput(f"environment '{target}' is not available",
                               f"move to one of: {', '.join(t for t in self.backends if t != env.type)}")
        if rec.archived_at is not None or env.state != "active":
            raise InvalidState(f"agent {rec.id} is archived, so it cannot move",
                               f"its work is on branch {env.branch}; spawn a new agent from it")
        if env.type == target:
            raise InvalidInput(f"agent {rec.id} is already in a {target}",
                               f"move it to another kind of environment: "
                               f"{', '.join(t for t in self.backends if t != target)}")
        if rec.status == "migrating":
            raise InvalidState(f"agent {rec.id} is already moving", "wait for that move to finish")
        if not rec.session_id or not env.branch or not env.base_commit:
            raise InvalidState(f"agent {rec.id} has no session or branch to move", "destroy it and spawn a new one")
        source_backend, target_backend = self.backends[env.type], self.backends[target]
        state = await source_backend.status(env)
        if state != "running":
            raise InvalidState(f"agent {rec.id}'s {env.type} is {state}, so its work cannot be read",
                               "archive the agent to keep its branch, then spawn a new one from it")
        project = self.store.get_project(rec.project_id)
        assert project is not None
        head = await git.resolve_commit(await source_backend.sync(env), "HEAD")
        mid = "mig_" + secrets.token_hex(5)
        spec = self._spec(project, env.branch, env.base_commit, "env_" + secrets.token_hex(6), options)
        await target_backend.preflight(spec, head)

        with self._lock(rec.id) as locked:
            if not locked:
                raise InvalidState(f"agent {rec.id} is already moving (another Palot process)",
                                   "wait for that move to finish")
            warm = target_backend.reserve(options)  # a warm container: no engine start during the move
            if warm is not None:
                spec = dataclasses.replace(spec, env_id=warm)
            manifest = MigrationManifest(
                id=mid, agent_id=rec.id, created_at=time.time(), status_before=rec.status,
                source=EnvironmentRef(type=env.type, environment_id=env.id, directory=env.directory),
                target=EnvironmentRef(type=target, environment_id=spec.env_id or "", options=dict(options or {})),
                git=GitState(branch=env.branch, base_commit=env.base_commit,
                             snapshot_ref=f"refs/palot/migrations/{mid}"),
                session=SessionState(id=rec.session_id, title=rec.title),
                environment=EnvironmentState(setup_script=env.data.get("setup_script")),
            )
            self.store.add_migration(MigrationRecord(
                id=mid, agent_id=rec.id, source_env_id=env.id, target_type=target, state="running",
                manifest=manifest.model_dump(mode="json"), created_at=time.time(), updated_at=time.time()))
            self.store.audit("migration_started", agent_id=rec.id, project_id=rec.project_id, migration=mid,
                             source=env.type, target=target)
            self._dir(mid).mkdir(parents=True, exist_ok=True)
            self.agents.set_migrating(rec.id, True)
            run = _Run(self, manifest, project, progress)
            try:
                await run.forward(resume)
            except BaseException as e:
                await run.stop_background()
                if self.store.get_migration(mid).state == "running":
                    reason = str(e) or type(e).__name__
                    try:
                        await asyncio.shield(self._rollback(run.manifest, project, reason))
                        rollback_error = None
                    except Exception as rb:  # noqa: BLE001 - reported to the user below, as it is
                        rollback_error = str(rb) or type(rb).__name__
                        log.warning("rolling back move %s failed: %s", mid, rollback_error, exc_info=True)
                        self.store.update_migration(mid, error=f"{reason[:500]}; rollback failed: "
                                                               f"{rollback_error[:400]}")
                    if isinstance(e, (asyncio.CancelledError, KeyboardInterrupt)):
                        raise
                    failed = f"moving agent {rec.id} to a {target} failed at step '{run.step}': {reason}"
                    if rollback_error is not None:
                        # The source was never changed before the commit point; what is left over is the target.
                        raise MigrationFailed(
                            f"{failed}; undoing it also failed ({rollback_error}), so the half-made {target} "
                            f"may still exist and the agent shows as migrating",
                            f"its work is safe in its {env.type}; run any `palot` command to finish the undo "
                            f"(`palot agents moves {rec.id}` shows how it went), then move it again",
                        ) from e
                    raise MigrationFailed(
                        failed, f"the agent is back in its {env.type}, as it was; fix the cause and move it again",
                    ) from e
                # After the commit point the agent already lives in the target; what is left (the source's
                # clean-up) is finished by the next start.
                self.agents.set_migrating(rec.id, False)
                raise MigrationUnfinished(f"agent {rec.id} moved to the {target}, but finishing the move failed: {e}",
                                          "Palot finishes it on its next start; run any `palot` command to do it now") from e
            return run.result(time.monotonic() - started)

    async def recover(self) -> list[MigrationRecord]:
        """Finish or roll back every move a crashed Palot left unfinished (skips moves still running
        in another process)."""
        done: list[MigrationRecord] = []
        for mig in self.store.list_migrations(state=["running", "committed"]):
            recovery = decide_recovery(mig.state)
            if recovery == "nothing":
                continue
            with self._lock(mig.agent_id) as locked:
                if not locked:
                    continue
                try:
                    manifest = MigrationManifest.model_validate(mig.manifest)
                except ValidationError as e:  # written by another Palot version: left for a person to look at
                    log.warning("migration %s has a manifest this Palot cannot read: %s", mig.id, e)
                    self.store.update_migration(mig.id, error=f"its manifest cannot be read: {str(e)[:300]}")
                    continue
                project = self._project(manifest.agent_id)
                if project is None:
                    self.store.update_migration(mig.id, state="failed", error="the agent is gone")
                    continue
                try:
                    if recovery == "roll_back":
                        await self._rollback(manifest, project, f"Palot stopped during step '{mig.step}'")
                    else:
                        run = _Run(self, manifest, project, quiet)
                        await run.finish(resume=None)
                except Exception as e:  # noqa: BLE001 - said as it is; the next start tries again
                    log.warning("could not %s migration %s: %s", recovery.replace("_", " "), mig.id, e,
                                exc_info=not isinstance(e, PalotError))
                    self.store.update_migration(mig.id, error=f"{recovery.replace('_', ' ')} failed: "
                                                              f"{str(e)[:900] or type(e).__name__}")
                    continue
                done.append(self.store.get_migration(mig.id))
        return done

    def history(self, agent_ref: str) -> list[MigrationRecord]:
        """The agent's moves, oldest first."""
        return self.store.list_migrations(agent_id=self.agents.resolve(agent_ref))

    # --- helpers ------------------------------------------------------------

    def _dir(self, mid: str) -> Path:
        return self.root / mid

    @contextlib.contextmanager
    def _lock(self, agent_id: str) -> Iterator[bool]:
        """One move per agent across processes; a crashed mover's lock dies with it."""
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{agent_id}.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _project(self, agent_id: str) -> ProjectRecord | None:
        try:
            rec = self.store.get_agent(agent_id)
        except PalotError:
            return None
        return self.store.get_project(rec.project_id)

    @staticmethod
    def _spec(project: ProjectRecord, branch: str, base_commit: str, env_id: str,
              options: dict[str, Any] | None, dev_ports: PortRange | None = None) -> EnvironmentSpec:
        # The agent keeps its dev-server ports in its new environment.
        return EnvironmentSpec(project_path=Path(project.path), project_id=project.id, project_name=project.name,
                               branch=branch, base_commit=base_commit, options=options or None, env_id=env_id,
                               branch_from_bundle=True, dev_ports=dev_ports)

    async def _rollback(self, manifest: MigrationManifest, project: ProjectRecord, reason: str) -> None:
        """Undo a move that did not reach its commit point: each step's undo, last step first (all of them:
        the target may have been started in the background before its step), so the target is discarded
        and the source is as it was."""
        mid = manifest.id
        mig = self.store.get_migration(mid)
        self.store.journal(mid, "rollback", "started", reason=reason[:500])
        run = _Run(self, manifest, project, quiet)
        for step in reversed(_TABLE):
            if step.name in UNDOABLE and step.undo is not None:
                await step.undo(run)
        self.store.update_migration(mid, state="rolled_back", error=reason[:1000])
        self.store.journal(mid, "rollback", "done")
        self.store.audit("migration_rolled_back", agent_id=manifest.agent_id, project_id=project.id, migration=mid,
                         step=mig.step, reason=reason[:500])
        await asyncio.to_thread(shutil.rmtree, self._dir(mid), ignore_errors=True)


class _Run:
    """One move in progress: the steps, in order, each journaled."""

    def __init__(self, engine: MigrationEngine, manifest: MigrationManifest, project: ProjectRecord,
                 progress: Progress) -> None:
        self.e = engine
        self.manifest = manifest
        self.project = project
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

    async def stop_background(self) -> None:
        """Cancel and wait for background work, so a rollback never races a target still being made."""
        for task in (self._provisioning, self._exporting):
            if task is not None and not task.done():
                task.cancel()
            if task is not None:
                with contextlib.suppress(BaseException):
                    await task

    @property
    def mid(self) -> str:
        return self.manifest.id

    @property
    def dir(self) -> Path:
        return self.e._dir(self.mid)

    def _save(self) -> None:
        self.e.store.update_migration(self.mid, manifest=self.manifest.model_dump(mode="json"))

    async def _step(self, name: str, action: Callable[[], Awaitable[T]]) -> T:
        self.step = name
        self.progress(progress_line(name, self.manifest.source.type, self.manifest.target.type))
        self.e.store.journal(self.mid, name, "started")
        result = await action()
        self.e.store.journal(self.mid, name, "done")
        return result

    def _source(self) -> tuple[EnvironmentRecord, RuntimeBackend]:
        env = self.e.store.get_environment(self.manifest.source.environment_id)
        assert env is not None
        return env, self.e.backends[env.type]

    def _target(self) -> tuple[EnvironmentRecord, RuntimeBackend]:
        env = self.target_env or self.e.store.get_environment(self.manifest.target.environment_id)
        assert env is not None
        return env, self.e.backends[env.type]

    # --- forward ------------------------------------------------------------

    async def forward(self, resume: bool | None) -> None:
        self.resume_wanted = resume
        for step in _TABLE:
            if step.name not in UNDOABLE:
                break
            await self._step(step.name, functools.partial(step.do, self))
        await self.finish(resume=resume)

    async def pause(self) -> None:
        m = self.manifest
        m.session.was_busy = await self.e.agents.pause_for_move(m.agent_id)
        env, backend = self._source()
        m.environment.processes = [ProcessRecord.of(p) for p in await backend.processes(env)]
        # Dev servers stay reachable: their ports are published from the new container (on loopback).
        m.target.options = target_options(m.target.type, m.target.options, m.environment.processes)
        self._save()
        loop = asyncio.get_running_loop()
        self._exporting = loop.create_task(backend.export_session(env, m.session.id))
        self._provisioning = loop.create_task(self._provision())

    async def checkpoint(self) -> None:
        env, backend = self._source()
        head, snapshot = await backend.export_code(env, self.dir / self.manifest.git.bundle,
                                                   self.manifest.git.snapshot_ref)
        self.manifest.git.head_commit, self.manifest.git.snapshot_commit = head, snapshot
        self.manifest.git.remote_url = await git.remote_url(Path(self.project.path))
        self._save()

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
        self.manifest.session.last_prompt = _last_user_text(messages)
        self._save()

    async def provision(self) -> None:
        assert self._provisioning is not None
        await self._provisioning

    async def _provision(self) -> None:
        m = self.manifest
        backend = self.e.backends[m.target.type]
        source, _ = self._source()
        spec = self.e._spec(self.project, m.git.branch, m.git.base_commit, m.target.environment_id,
                            m.target.options, PortRange.from_data(source.data))
        env = await backend.provision(spec)
        data = dict(env.data)
        if m.environment.setup_script:
            data["setup_script"] = m.environment.setup_script
        # "migrating" until the commit point: a restart does not treat it as the agent's environment.
        env = env.model_copy(update={"state": "migrating", "data": data})
        self.e.store.add_environment(env)
        self.target_env = env
        m.target.directory = env.directory
        self.e.store.update_migration(self.mid, target_env_id=env.id)

    async def import_code(self) -> None:
        env, backend = self._target()
        await backend.import_code(env, self.dir / self.manifest.git.bundle, self.manifest.git.snapshot_ref)
        git_state = self.manifest.git
        assert git_state.snapshot_commit
        self.files_changed = len(await git.changed_paths(backend.host_path(env), git_state.base_commit,
                                                         git_state.snapshot_commit))

    async def import_session(self) -> None:
        env, backend = self._target()
        data = self.export or (self.dir / self.manifest.session.export).read_bytes()
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

    async def finish(self, *, resume: bool | None) -> None:
        m = self.manifest
        self.resume_wanted = resume
        left = steps_left({(j.step, j.phase) for j in self.e.store.migration_journal(self.mid)})
        for step in _TABLE:
            if step.name in left:
                await self._step(step.name, functools.partial(step.do, self))
        self.e.store.update_migration(self.mid, state="completed")
        self.e.store.audit("migration_completed", agent_id=m.agent_id, project_id=self.project.id,
                           migration=self.mid, source=m.source.type, target=m.target.type,
                           messages=m.session.message_count, resumed=self.resumed)
        await asyncio.to_thread(shutil.rmtree, self.dir, ignore_errors=True)

    async def resume(self) -> None:
        m = self.manifest
        mig = self.e.store.get_migration(self.mid)
        if mig.state == "running":
            self.e.store.commit_migration(self.mid, m.agent_id, m.target.environment_id, m.source.environment_id)
        target_env, _ = self._target()
        m.resume_note = _resume_note(m, target_env)
        self._save()
        plan = plan_move(m, self.resume_wanted)
        if plan.send_note:
            m.session.resumed = True  # saved first: a restart never sends the note twice
            self._save()
        await self.e.agents.moved(m.agent_id, plan.status_after, note=m.resume_note if plan.send_note else None)
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
        spec = self.e._spec(self.project, m.git.branch, m.git.base_commit, env.id, None)
        with contextlib.suppress(PalotError):
            await git.delete_ref(backend.host_path(env), m.git.snapshot_ref)
        await backend.discard(env.id, spec)

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


    # --- undoing (before the commit point; each tolerant of what never happened) -----------------

    async def unpause(self) -> None:
        self.e.agents.moved_back(self.manifest.agent_id, plan_move(self.manifest, None).status_after)

    async def drop_snapshot(self) -> None:
        source = self.e.store.get_environment(self.e.store.get_migration(self.mid).source_env_id)
        if source is not None:
            with contextlib.suppress(PalotError):
                await git.delete_ref(self.e.backends[source.type].host_path(source), self.manifest.git.snapshot_ref)

    async def discard_target(self) -> None:
        m = self.manifest
        target_env = self.e.store.get_environment(m.target.environment_id)
        spec = self.e._spec(self.project, m.git.branch, m.git.base_commit, m.target.environment_id, m.target.options)
        await self.e.backends[m.target.type].discard(m.target.environment_id, spec)
        if target_env is not None:
            self.e.store.update_environment(m.target.environment_id, state="discarded")

    async def drop_imported_session(self) -> None:
        # The imported copy of the conversation lives on the target's server: remove it there.
        target_env = self.e.store.get_environment(self.manifest.target.environment_id)
        if target_env is not None:
            with contextlib.suppress(PalotError):
                await self.e.backends[target_env.type].client_for(target_env).delete_session(
                    self.manifest.session.id, target_env.directory)


@dataclass(frozen=True)
class Step:
    """One step of a move: its work, and how a rollback undoes it (None: nothing of it outlives the move)."""

    name: str
    do: Callable[[_Run], Awaitable[None]]
    undo: Callable[[_Run], Awaitable[None]] | None = None


#: The move, step by step, in the order of :data:`palot.api.STEPS` (checked below).
_TABLE: tuple[Step, ...] = (
    Step("pause", _Run.pause, _Run.unpause),
    Step("checkpoint", _Run.checkpoint, _Run.drop_snapshot),
    Step("export", _Run.export_state),
    Step("provision", _Run.provision, _Run.discard_target),
    Step("import_code", _Run.import_code),  # into the target: discarded with it
    Step("import_session", _Run.import_session, _Run.drop_imported_session),
    Step("setup", _Run.setup),
    Step("resume", _Run.resume),  # the commit point: never undone, only finished
    Step("cleanup", _Run.cleanup),
)
assert tuple(s.name for s in _TABLE) == STEPS, "the table has every step of api.STEPS, in order"


def _last_user_text(messages: list[dict[str, Any]]) -> str | None:
    for message in reversed(messages):
        if (message.get("info") or {}).get("role") == "user":
            texts = [p.get("text", "") for p in message.get("parts") or []
                     if p.get("type") == "text" and not p.get("synthetic")]
            if any(texts):
                return "\n".join(t for t in texts if t).strip()
    return None


def _resume_note(m: MigrationManifest, target: EnvironmentRecord) -> str:
    where = {"worktree": "a git worktree", "container": "a container", "cloud": "a cloud container"}
    lines = [
        f"[Palot] You were moved from {where.get(m.source.type, m.source.type)} to "
        f"{where.get(m.target.type, m.target.type)}; your working directory is now {target.directory}.",
        f"Your branch {m.git.branch}, its commits, your uncommitted and untracked files and this conversation "
        "came with you.",
    ]
    if m.environment.processes:
        lines.append("Processes that were running were restarted: "
                     + "; ".join(f"`{p.command}`" + (f" (port {', '.join(map(str, p.ports))})" if p.ports else "")
                                 for p in m.environment.processes) + ".")
    if m.session.was_busy and m.session.last_prompt:
        prompt = m.session.last_prompt if len(m.session.last_prompt) <= 300 else m.session.last_prompt[:299] + "…"
        lines.append(f"You were working on: {prompt}")
    lines.append("Continue where you left off." if m.session.was_busy else "Carry on from here.")
    return "\n".join(lines)
