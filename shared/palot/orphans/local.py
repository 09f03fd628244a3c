"""Orphans on this machine: worktrees and environment files under Palot's data dir, relay-socket
directories, move leftovers and locks, and ``palot/*`` branches no record names — each with the work it
holds and the command that keeps it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from .. import api, git
from ..backends.container import run_dir
from ..store import EnvironmentRecord
from .found import KEEP_PREFIX, Found, Scope, git_out, held, size, unique_bytes, unreachable_commits


async def worktrees(scope: Scope) -> list[Found]:
    owned = {str(Path(e.directory)) for e in scope.envs if e.type == "worktree" and e.id in scope.live}
    found: list[Found] = []
    for path in await asyncio.to_thread(_worktree_dirs, scope.paths.worktrees):  # a walk of the disk
        if str(path) not in owned and not scope.new_path(path):
            found.append(await _worktree(path))
    return found


def _worktree_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return [path for project_dir in sorted(p for p in root.iterdir() if p.is_dir())
            for path in sorted(p for p in project_dir.iterdir() if p.is_dir())]


async def _worktree(path: Path) -> Found:
    nbytes = await size(path)
    common = await git_out(path, "rev-parse", "--path-format=absolute", "--git-common-dir")
    if common is None or not (path / ".git").is_file():
        empty = not any(path.iterdir())

        async def rm() -> None:
            await asyncio.to_thread(shutil.rmtree, path)

        return Found(api.Orphan(
            kind="worktree", name=str(path), size=nbytes, why="a directory in Palot's worktrees that no agent owns "
            "and that is not a git worktree", safe=empty,
            work=None if empty else "files that are not in git", keep=None if empty else f"mv {path} ~/"), rm)
    repo = Path(common.strip()).parent
    branch = (await git_out(path, "symbolic-ref", "--quiet", "--short", "HEAD") or "").strip() or None
    work: list[str] = []
    if await git_out(path, "status", "--porcelain") not in (None, ""):
        work.append("uncommitted changes")
    if branch is None and await unreachable_commits(repo, "HEAD") > 0:
        work.append("commits on no branch")
    keep = None
    if work:
        target = branch or f"{KEEP_PREFIX}{path.name}"
        keep = (f"git -C {path} add -A && git -C {path} commit -m 'kept by hand'"
                + ("" if branch else f" && git -C {path} branch {target}"))

    async def rm_worktree() -> None:
        await git.remove_worktree(repo, path, force=True)
        await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)

    return Found(api.Orphan(
        kind="worktree", name=str(path), project=str(repo), size=nbytes,
        why="no agent record owns this worktree" + (f" (branch {branch})" if branch else ""),
        safe=not work, work=", ".join(work) or None, keep=keep), rm_worktree)


async def environment_files(scope: Scope) -> list[Found]:
    found: list[Found] = []
    root = scope.paths.environments
    if not root.is_dir():
        return found
    by_id = {e.id: e for e in scope.envs}
    for path in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in scope.live):
        if not scope.new_path(path):
            found.append(await _environment_dir(path, by_id.get(path.name)))
    return found


async def _environment_dir(path: Path, env: EnvironmentRecord | None) -> Found:
    nbytes = await size(path)
    clone = next((c for c in (path / "workspace", path / "mirror") if (c / ".git").exists()), None)
    work: list[str] = []
    keep = None
    if clone is not None:
        project = Path(env.data["project_path"]) if env and env.data.get("project_path") else None
        if project is None:
            origin = await git_out(clone, "remote", "get-url", "origin")
            project = Path(origin.strip()) if origin and Path(origin.strip()).is_dir() else None
        if await git_out(clone, "status", "--porcelain") not in (None, ""):
            work.append("uncommitted changes")
        head = (await git_out(clone, "rev-parse", "HEAD") or "").strip()
        if head and (project is None or not await git_out(project, "for-each-ref", "--contains", head)):
            work.append("commits that are in no branch of the project")
        if work:
            where = project or "YOUR-REPOSITORY"
            keep = (f"git -C {clone} add -A && git -C {clone} commit -m 'kept by hand'; "
                    f"git -C {clone} push {where} HEAD:refs/heads/{KEEP_PREFIX}{path.name}")

    async def rm() -> None:
        await asyncio.to_thread(shutil.rmtree, path)

    state = f"its environment is {env.state}" if env else "no environment record names it"
    return Found(api.Orphan(
        kind="environment_files", name=str(path), size=nbytes,
        project=env.data.get("project_path") if env else None,
        why=f"files of environment {path.name}, and {state}", safe=not work,
        work=", ".join(work) or None, keep=keep), rm)


async def relay_sockets(scope: Scope) -> list[Found]:
    base = run_dir("x").parent
    found: list[Found] = []
    # Shared by every Palot home of this user: only the environments this home recorded are its own.
    for path in sorted(p for p in base.iterdir() if p.name in scope.known and p.name not in scope.live):

        async def rm(p: Path = path) -> None:
            await asyncio.to_thread(shutil.rmtree, p)

        found.append(Found(api.Orphan(
            kind="relay_socket", name=str(path), size=await size(path),
            why=f"the relay-socket directory of environment {path.name}, which no agent owns", safe=True), rm))
    return found


async def moves(scope: Scope) -> list[Found]:
    root = scope.paths.migrations
    if not root.is_dir():
        return []
    running = {m.id for m in scope.store.list_migrations(state=["running", "committed"])}
    found: list[Found] = []
    for path in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "locks" and p.name not in running):

        async def rm(p: Path = path) -> None:
            await asyncio.to_thread(shutil.rmtree, p)

        found.append(Found(api.Orphan(
            kind="move", name=str(path), size=await size(path),
            why="the work directory of a move that is not in progress (its bundles and exports are copies)",
            safe=True), rm))
    return found


async def locks(scope: Scope) -> list[Found]:
    root = scope.paths.migrations / "locks"
    if not root.is_dir():
        return []
    moving = {m.agent_id for m in scope.store.list_migrations(state=["running", "committed"])}
    found: list[Found] = []
    for path in sorted(root.glob("*.lock")):
        if path.stem in moving or held(path):
            continue

        async def rm(p: Path = path) -> None:
            if not held(p):
                p.unlink(missing_ok=True)

        found.append(Found(api.Orphan(
            kind="lock", name=str(path), size=await size(path),
            why=f"a move lock of agent {path.stem}, which no process holds and no move uses", safe=True), rm))
    return found


async def branches(scope: Scope, reserved: set[tuple[str, str]]) -> list[Found]:
    """``palot/*`` branches of the projects Palot knows that no record names and no spawn in progress
    (``reserved``: (repository, branch)) chose."""
    # A branch is owned while an environment record that is not destroyed names it (an archived agent
    # keeps its branch on purpose).
    owned: dict[str, set[str]] = {}
    for e in scope.envs:
        if e.state != "destroyed" and e.branch and e.data.get("project_path"):
            owned.setdefault(str(Path(e.data["project_path"])), set()).add(e.branch)
    found: list[Found] = []
    for project in scope.store.list_projects():
        repo = Path(project.path)
        if not repo.is_dir():
            continue
        refs = await git_out(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/palot/")
        for branch in (refs or "").split():
            if branch in owned.get(str(repo), set()) or (str(repo), branch) in reserved:
                continue
            found.append(await _branch(repo, branch))
    return found


async def _branch(repo: Path, branch: str) -> Found:
    unmerged = await unreachable_commits(repo, f"refs/heads/{branch}")
    nbytes = await unique_bytes(repo, f"refs/heads/{branch}")
    kept = KEEP_PREFIX + branch.removeprefix("palot/")

    async def rm() -> None:
        await git.delete_branch(repo, branch, force=True)

    return Found(api.Orphan(
        kind="branch", name=branch, project=str(repo), size=nbytes,
        why="a palot/* branch no agent record names",
        safe=unmerged == 0, work=f"{unmerged} commit(s) merged nowhere" if unmerged else None,
        keep=f"git -C {repo} branch -m {branch} {kept}" if unmerged else None), rm)
