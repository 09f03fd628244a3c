"""Orphans (``palot gc``): what Palot made that no agent record owns any more, and removing it safely.

Only Palot's own things are looked at: directories under Palot's data dir (worktrees, environment files,
move leftovers and locks), the relay-socket directories of environments this home recorded, ``palot/*``
branches of the projects Palot knows, and containers and volumes with Palot's labels (of this home, or of
an environment this home recorded). Each orphan says why it is one, its size, and whether it holds work —
unmerged commits, uncommitted changes — with the exact command that keeps that work. Removal takes only
the safe ones unless forced; an orphan that cannot be removed says why and the rest go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import api, git
from .errors import PalotError
from .backends.container import ContainerBackend
from .store import EnvironmentRecord

if TYPE_CHECKING:
    from .core import Palot
    from .policies.housekeeping import Hold

LIVE_STATES = ("active", "migrating")
#: While a spawn or a move is in progress, what was made this recently may be its environment, not yet
#: recorded: it is left alone.
GRACE_SECONDS = 600.0
#: Where a kept branch goes: out of ``palot/*``, so gc never looks at it again.
KEEP_PREFIX = "kept/"


@dataclass
class Found:
    """An orphan and how to remove it."""

    orphan: api.Orphan
    remove: Callable[[], Awaitable[None]]


def tree_size(root: Path) -> int:
    """Bytes of every file under ``root`` (symlinks not followed)."""
    if root.is_file() or root.is_symlink():
        with contextlib.suppress(OSError):
            return os.lstat(root).st_size
        return 0
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


async def _size(path: Path) -> int:
    return await asyncio.to_thread(tree_size, path)


async def _git(repo: Path, *args: str) -> str | None:
    """git's output, or None when the command failed (a missing repository, an unknown ref)."""
    try:
        res = await git.run_git(*args, cwd=repo, check=False)
    except PalotError:
        return None
    return res.stdout if res.returncode == 0 else None


async def _unreachable_commits(repo: Path, rev: str) -> int:
    """How many commits of ``rev`` no other ref of ``repo`` but ``palot/*`` ones holds, counting HEAD and the
    default branch (what 'merged' means for an orphan: its commits live on elsewhere)."""
    others = await _git(repo, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes", "refs/tags")
    keep = [r for r in (others or "").split() if not r.startswith("refs/heads/palot/")]
    out = await _git(repo, "rev-list", "--count", rev, "--not", "HEAD", *keep)
    return int(out.strip()) if out and out.strip().isdigit() else 0


async def _unique_bytes(repo: Path, rev: str) -> int:
    """Bytes of the objects only ``rev`` holds (what deleting the branch would eventually free)."""
    objects = await _git(repo, "rev-list", "--objects", rev, "--not", "HEAD")
    ids = "\n".join(line.split(" ", 1)[0] for line in (objects or "").splitlines() if line.strip())
    if not ids:
        return 0
    res = await git.run_git("cat-file", "--batch-check=%(objectsize:disk)", cwd=repo, input=(ids + "\n").encode(),
                            check=False)
    return sum(int(x) for x in res.stdout.split() if x.isdigit())


class Sweeper:
    """Finds and removes orphans of one Palot home."""

    def __init__(self, palot: "Palot", hold: "Hold | None" = None) -> None:
        self.palot = palot
        # The service's per-agent lock: archiving a record whose environment is gone never races a
        # prompt, a move or an auto-archive of the same agent.
        self._hold = hold or _unlocked
        self.store = palot.store
        self.paths = palot.paths
        self._busy = False

    def _new(self, made_at: float) -> bool:
        """Made so recently, while a spawn or move runs, that it may be that one's (not yet recorded)."""
        return self._busy and time.time() - made_at < GRACE_SECONDS

    def _new_path(self, path: Path) -> bool:
        try:
            return self._new(path.stat().st_mtime)
        except OSError:
            return False

    # --- what the records own -----------------------------------------------

    def _records(self) -> tuple[list[EnvironmentRecord], set[str], set[str]]:
        envs = self.store.list_environments()
        moving = self.store.list_migrations(state=["running", "committed"])
        # A move's target is journaled before it is made: it is live already.
        live = {e.id for e in envs if e.state in LIVE_STATES} | {
            str(m.manifest.get("target", {}).get("environment_id") or "") for m in moving}
        container = self.palot.backends.get("container")
        if isinstance(container, ContainerBackend):
            live |= container.warm_ids()  # started ahead of need by this service: not orphans
        known = {e.id for e in envs} | {m.target_env_id for m in self.store.list_migrations() if m.target_env_id}
        self._busy = self.palot.agents.spawning or bool(moving)
        return envs, live - {""}, known

    # --- scanning -----------------------------------------------------------

    async def scan(self) -> tuple[list[Found], list[str]]:
        """Every orphan, in the order they can be removed (a worktree before its branch, a container before
        its volume), and what could not be checked."""
        envs, live, known = self._records()
        found: list[Found] = []
        unchecked: list[str] = []
        found += await self._records_without_environment()
        found += await self._worktrees(envs, live)
        found += await self._environment_files(envs, live)
        engine_found, why = await self._engine(live, known)
        found += engine_found
        if why:
            unchecked.append(why)
        found += await self._relay_sockets(live, known)
        cloud_found, why = await self._cloud(envs, live, known)
        found += cloud_found
        if why:
            unchecked.append(why)
        found += await self._moves()
        found += await self._locks()
        found += await self._branches(envs)
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

    async def _worktrees(self, envs: list[EnvironmentRecord], live: set[str]) -> list[Found]:
        owned = {str(Path(e.directory)) for e in envs if e.type == "worktree" and e.id in live}
        found: list[Found] = []
        root = self.paths.worktrees
        if not root.is_dir():
            return found
        for project_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            for path in sorted(p for p in project_dir.iterdir() if p.is_dir()):
                if str(path) not in owned and not self._new_path(path):
                    found.append(await self._worktree(path))
        return found

    async def _worktree(self, path: Path) -> Found:
        size = await _size(path)
        common = await _git(path, "rev-parse", "--path-format=absolute", "--git-common-dir")
        if common is None or not (path / ".git").is_file():
            empty = not any(path.iterdir())

            async def rm() -> None:
                await asyncio.to_thread(shutil.rmtree, path)

            return Found(api.Orphan(
                kind="worktree", name=str(path), size=size, why="a directory in Palot's worktrees that no agent owns "
                "and that is not a git worktree", safe=empty,
                work=None if empty else "files that are not in git", keep=None if empty else f"mv {path} ~/"), rm)
        repo = Path(common.strip()).parent
        branch = (await _git(path, "symbolic-ref", "--quiet", "--short", "HEAD") or "").strip() or None
        work: list[str] = []
        if await _git(path, "status", "--porcelain") not in (None, ""):
            work.append("uncommitted changes")
        if branch is None and await _unreachable_commits(repo, "HEAD") > 0:
            work.append("commits on no branch")
        keep = None
        if work:
            target = branch or f"{KEEP_PREFIX}{path.name}"
            keep = (f"git -C {path} add -A && git -C {path} commit -m 'kept by hand'"
                    + ("" if branch else f" && git -C {path} branch {target}"))

        async def rm() -> None:
            await git.remove_worktree(repo, path, force=True)
            await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)

        return Found(api.Orphan(
            kind="worktree", name=str(path), project=str(repo), size=size,
            why="no agent record owns this worktree" + (f" (branch {branch})" if branch else ""),
            safe=not work, work=", ".join(work) or None, keep=keep), rm)

    async def _environment_files(self, envs: list[EnvironmentRecord], live: set[str]) -> list[Found]:
        found: list[Found] = []
        root = self.paths.environments
        if not root.is_dir():
            return found
        by_id = {e.id: e for e in envs}
        for path in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in live):
            if not self._new_path(path):
                found.append(await self._environment_dir(path, by_id.get(path.name)))
        return found

    async def _environment_dir(self, path: Path, env: EnvironmentRecord | None) -> Found:
        size = await _size(path)
        clone = next((c for c in (path / "workspace", path / "mirror") if (c / ".git").exists()), None)
        work: list[str] = []
        keep = None
        if clone is not None:
            project = Path(env.data["project_path"]) if env and env.data.get("project_path") else None
            if project is None:
                origin = await _git(clone, "remote", "get-url", "origin")
                project = Path(origin.strip()) if origin and Path(origin.strip()).is_dir() else None
            if await _git(clone, "status", "--porcelain") not in (None, ""):
                work.append("uncommitted changes")
            head = (await _git(clone, "rev-parse", "HEAD") or "").strip()
            if head and (project is None or not await _git(project, "for-each-ref", "--contains", head)):
                work.append("commits that are in no branch of the project")
            if work:
                where = project or "YOUR-REPOSITORY"
                keep = (f"git -C {clone} add -A && git -C {clone} commit -m 'kept by hand'; "
                        f"git -C {clone} push {where} HEAD:refs/heads/{KEEP_PREFIX}{path.name}")

        async def rm() -> None:
            await asyncio.to_thread(shutil.rmtree, path)

        state = f"its environment is {env.state}" if env else "no environment record names it"
        return Found(api.Orphan(
            kind="environment_files", name=str(path), size=size,
            project=env.data.get("project_path") if env else None,
            why=f"files of environment {path.name}, and {state}", safe=not work,
            work=", ".join(work) or None, keep=keep), rm)

    def _ours(self, labels: dict[str, str], known: set[str]) -> bool:
        home = labels.get("palot.home")
        if home is not None:
            return home == str(self.paths.home)
        return labels.get("palot.environment") in known  # made before Palot labelled its home

    async def _engine(self, live: set[str], known: set[str]) -> tuple[list[Found], str | None]:
        from .images import engine

        try:
            client = await asyncio.to_thread(engine, 10)
        except PalotError as e:
            return [], f"containers and volumes: {e.message}"
        try:
            containers = await asyncio.to_thread(
                client.api.containers, all=True, size=True, filters={"label": "palot.environment"})
            volumes = await asyncio.to_thread(client.api.volumes, filters={"label": "palot.environment"})
        except Exception as e:  # the SDK raises many types for "the engine went away"
            return [], f"containers and volumes: the container engine failed ({type(e).__name__}: {str(e)[:200]})"
        found: list[Found] = []
        for c in containers:
            labels = c.get("Labels") or {}
            env_id = labels.get("palot.environment", "")
            if env_id in live or not self._ours(labels, known) or self._new(float(c.get("Created") or 0)):
                continue
            name = (c.get("Names") or [c["Id"][:12]])[0].lstrip("/")

            async def rm_container(cid: str = c["Id"]) -> None:
                await asyncio.to_thread(lambda: client.api.remove_container(cid, force=True))

            found.append(Found(api.Orphan(
                kind="container", name=name, project=labels.get("palot.project"), size=int(c.get("SizeRw") or 0),
                why=f"a Palot container ({c.get('State', '?')}) of environment {env_id}, which no agent owns "
                    "(the agent's code lives in its branch and workspace, not in the container)",
                safe=True), rm_container))
        sizes: dict[str, int] = {}
        if any(self._ours(v.get("Labels") or {}, known) for v in (volumes.get("Volumes") or [])):
            with contextlib.suppress(Exception):
                df = await asyncio.to_thread(client.df)
                sizes = {v["Name"]: int((v.get("UsageData") or {}).get("Size") or 0) for v in df.get("Volumes") or []}
        for v in volumes.get("Volumes") or []:
            labels = v.get("Labels") or {}
            env_id = labels.get("palot.environment", "")
            if env_id in live or not self._ours(labels, known) or self._busy:
                continue  # (a volume has no creation time the API gives reliably: not during a spawn)

            async def rm_volume(name: str = v["Name"]) -> None:
                await asyncio.to_thread(lambda: client.api.remove_volume(name, force=True))

            found.append(Found(api.Orphan(
                kind="volume", name=v["Name"], project=labels.get("palot.project"), size=sizes.get(v["Name"]),
                why=f"the home volume of environment {env_id} (OpenCode's data inside it), which no agent owns",
                safe=True), rm_volume))
        return found, None

    async def _relay_sockets(self, live: set[str], known: set[str]) -> list[Found]:
        from .backends.container import run_dir

        base = run_dir("x").parent
        found: list[Found] = []
        # Shared by every Palot home of this user: only the environments this home recorded are its own.
        for path in sorted(p for p in base.iterdir() if p.name in known and p.name not in live):

            async def rm(p: Path = path) -> None:
                await asyncio.to_thread(shutil.rmtree, p)

            found.append(Found(api.Orphan(
                kind="relay_socket", name=str(path), size=await _size(path),
                why=f"the relay-socket directory of environment {path.name}, which no agent owns", safe=True), rm))
        return found

    async def _cloud(self, envs: list[EnvironmentRecord], live: set[str],
                     known: set[str]) -> tuple[list[Found], str | None]:
        from .cloud import config as cloud_config

        try:
            cloud_config.load(self.paths)
        except PalotError:
            return [], None  # the cloud tier is not set up: nothing there
        backend = self.palot.backends["cloud"]
        try:
            listed = await backend.worker().list_envs()  # type: ignore[attr-defined]
        except PalotError as e:
            return [], f"cloud environments: {e.message}"
        found: list[Found] = []
        for item in listed:
            env_id = str(item.get("id", ""))
            if env_id not in known or env_id in live:
                continue  # another home's (the Worker may serve several), or in use

            async def rm(i: str = env_id) -> None:
                await backend._remove(i)  # type: ignore[attr-defined]

            found.append(Found(api.Orphan(
                kind="cloud", name=env_id, size=None,
                why=f"cloud environment {env_id} is still running, and no agent owns it (its work was kept on "
                    "the agent's branch when it was archived or moved)", safe=True), rm))
        return found, None

    async def _moves(self) -> list[Found]:
        root = self.paths.migrations
        if not root.is_dir():
            return []
        running = {m.id for m in self.store.list_migrations(state=["running", "committed"])}
        found: list[Found] = []
        for path in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "locks" and p.name not in running):

            async def rm(p: Path = path) -> None:
                await asyncio.to_thread(shutil.rmtree, p)

            found.append(Found(api.Orphan(
                kind="move", name=str(path), size=await _size(path),
                why="the work directory of a move that is not in progress (its bundles and exports are copies)",
                safe=True), rm))
        return found

    async def _locks(self) -> list[Found]:
        root = self.paths.migrations / "locks"
        if not root.is_dir():
            return []
        moving = {m.agent_id for m in self.store.list_migrations(state=["running", "committed"])}
        found: list[Found] = []
        for path in sorted(root.glob("*.lock")):
            if path.stem in moving or _held(path):
                continue

            async def rm(p: Path = path) -> None:
                if not _held(p):
                    p.unlink(missing_ok=True)

            found.append(Found(api.Orphan(
                kind="lock", name=str(path), size=await _size(path),
                why=f"a move lock of agent {path.stem}, which no process holds and no move uses", safe=True), rm))
        return found

    async def _branches(self, envs: list[EnvironmentRecord]) -> list[Found]:
        # A branch is owned while an environment record that is not destroyed names it (an archived agent
        # keeps its branch on purpose).
        owned: dict[str, set[str]] = {}
        for e in envs:
            if e.state != "destroyed" and e.branch and e.data.get("project_path"):
                owned.setdefault(str(Path(e.data["project_path"])), set()).add(e.branch)
        reserved = self.palot.agents.reserved_branches()
        found: list[Found] = []
        for project in self.store.list_projects():
            repo = Path(project.path)
            if not repo.is_dir():
                continue
            refs = await _git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/palot/")
            for branch in (refs or "").split():
                if branch in owned.get(str(repo), set()) or (str(repo), branch) in reserved:
                    continue
                found.append(await self._branch(repo, branch))
        return found

    async def _branch(self, repo: Path, branch: str) -> Found:
        unmerged = await _unreachable_commits(repo, f"refs/heads/{branch}")
        size = await _unique_bytes(repo, f"refs/heads/{branch}")
        kept = KEEP_PREFIX + branch.removeprefix("palot/")

        async def rm() -> None:
            await git.delete_branch(repo, branch, force=True)

        return Found(api.Orphan(
            kind="branch", name=branch, project=str(repo), size=size,
            why="a palot/* branch no agent record names",
            safe=unmerged == 0, work=f"{unmerged} commit(s) merged nowhere" if unmerged else None,
            keep=f"git -C {repo} branch -m {branch} {kept}" if unmerged else None), rm)

    # --- removing -----------------------------------------------------------

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


def _held(path: Path) -> bool:
    """Whether a process holds the lock file (a move in progress in some process)."""
    try:
        with open(path) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        return True
    return False


def summary(report: api.GcReport) -> dict[str, Any]:
    """Counts for a notification: orphans, safe ones, bytes."""
    return {"orphans": len(report.orphans), "safe": sum(o.safe for o in report.orphans),
            "bytes": sum(o.size or 0 for o in report.orphans)}
