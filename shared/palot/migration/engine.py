"""The migration engine: move an agent to another environment, step by journaled step.

pause → checkpoint → export → provision → import_code → import_session → setup → resume → cleanup

The steps are one table (:mod:`.steps`: name, label, work, undo) run by a journaled loop
(:mod:`.executor`); the decisions along the way (ports, resume, statuses, what a restart does) are the pure
functions of :mod:`.plan`. This module is the mover's side: the checks before anything changes, the lock,
the move's record, and what a failure or a restart leads to.

Every step is journaled in the store before and after it runs. ``resume`` starts by switching the agent to
the target in one transaction (the commit point). A crash before that point is rolled back on the next start
(the target is discarded, the agent is where it was); a crash after it is finished (resume note, source
clean-up). The target's id is chosen and stored before the first step, so a rollback finds it however far it
got; that lets provisioning and the conversation export start in the background right after the pause (their
steps wait for them), which takes the container's start-up off the critical path. The source environment is
only touched by ``cleanup``, after the commit, so nothing the agent wrote can be lost at any point.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .. import git
from ..backends import RuntimeBackend
from ..errors import InvalidInput, InvalidState, MigrationFailed, MigrationUnfinished, PalotError
from ..install import Progress, quiet
from ..paths import PalotPaths
from ..store import MigrationRecord, ProjectRecord, Store
from .executor import finish, forward, roll_back
from .manifest import EnvironmentRef, EnvironmentState, GitState, MigrationManifest, MigrationResult, SessionState
from .plan import decide_recovery
from .steps import Move, MovingAgents, environment_spec

log = logging.getLogger(__name__)


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
        spec = environment_spec(project, env.branch, env.base_commit, "env_" + secrets.token_hex(6), options)
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
            run = self._move(manifest, project, progress)
            try:
                await forward(run, resume)
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
            recovery = decide_recovery(mig)
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
                        await finish(self._move(manifest, project, quiet), resume=None)
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

    def _move(self, manifest: MigrationManifest, project: ProjectRecord, progress: Progress) -> Move:
        return Move(manifest, project, store=self.store, backends=self.backends, agents=self.agents,
                    directory=self._dir(manifest.id), progress=progress)

    async def _rollback(self, manifest: MigrationManifest, project: ProjectRecord, reason: str) -> None:
        """:func:`.executor.roll_back`, with a move of its own (what the failed one held is in the store)."""
        await roll_back(self._move(manifest, project, quiet), reason)
