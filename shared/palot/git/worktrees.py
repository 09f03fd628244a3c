"""Worktrees, branches and the working state: adding and removing worktrees, deleting branches,
checkpoint commits and whether a checkout is dirty.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from palot.errors import BranchExists, GitError, InvalidInput, UnmergedWork

from .parse import _parse_status
from .refs import branch_exists, resolve_commit, validate_branch_name
from .run import _command_failed, _encode, recipe, run_git, run_script

#: The checkpoint recipe (see checkpoint.sh): ``sh -c CHECKPOINT_SCRIPT checkpoint.sh`` in the work tree, the
#: message on stdin; prints the new commit's sha, or nothing when there was nothing to commit.
CHECKPOINT_SCRIPT: str = recipe("checkpoint.sh")

_worktree_locks: dict[tuple[int, str], asyncio.Lock] = {}


def worktree_lock(repo: Path) -> asyncio.Lock:
    """One lock per repository for adding and removing worktrees: git reads every worktree's metadata while
    it adds one, so concurrent adds fail ("failed to read .git/worktrees/…/commondir")."""
    key = (id(asyncio.get_running_loop()), str(Path(repo).expanduser().resolve()))
    return _worktree_locks.setdefault(key, asyncio.Lock())



async def add_worktree(repo: Path, path: Path, branch: str, base_commit: str) -> None:
    """Create a new worktree at ``path`` on a new ``branch`` starting at ``base_commit``.

    Raises :class:`BranchExists` if the branch is taken and
    :class:`InvalidInput` if ``path`` already holds something.  Missing
    parent directories are created.
    """
    await validate_branch_name(branch)
    path = Path(path).expanduser()
    if await branch_exists(repo, branch):
        raise BranchExists(
            f"branch {branch!r} already exists in {repo}",
            "choose another branch name, or archive/destroy the agent using it",
        )
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InvalidInput(
            f"{path} already exists and is not an empty directory",
            "choose another location, or remove what is there first",
        )
    sha = await resolve_commit(repo, base_commit)
    path.parent.mkdir(parents=True, exist_ok=True)
    async with worktree_lock(repo):
        await run_git("worktree", "add", "--quiet", "-b", branch, "--", str(path.absolute()), sha, cwd=repo)


async def remove_worktree(repo: Path, path: Path, *, force: bool = False) -> None:
    """Remove the worktree at ``path``; quietly does nothing if it is already gone.

    Without ``force`` git refuses when the worktree has uncommitted or
    untracked files (checkpoint first).  Stale worktree records are pruned
    either way.
    """
    path = Path(path).expanduser()
    if path.exists():
        args = ["worktree", "remove"]
        if force:
            # Twice: also removes a worktree that was locked.
            args += ["--force", "--force"]
        args += ["--", str(path.absolute())]
        async with worktree_lock(repo):
            res = await run_git(*args, cwd=repo, check=False)
        if res.returncode != 0:
            stderr = res.stderr
            if "is not a working tree" not in stderr:
                if "modified or untracked files" in stderr or "is dirty" in stderr:
                    raise GitError(
                        f"the worktree at {path} has uncommitted changes: {stderr.strip()}",
                        "checkpoint or discard the changes first, or remove it with force",
                    )
                raise _command_failed(args, res)
            # Not (or no longer) a registered worktree: nothing to remove.
    # Drop records of worktrees whose directories were deleted by hand.
    async with worktree_lock(repo):
        await run_git("worktree", "prune", cwd=repo)


async def delete_branch(repo: Path, branch: str, *, force: bool = False) -> None:
    """Delete local ``branch``; quietly does nothing if it doesn't exist.

    Without ``force`` git refuses to delete a branch whose commits are not
    merged; that raises :class:`UnmergedWork` (a :class:`GitError`).
    """
    if not await branch_exists(repo, branch):
        return
    args = ["branch", "-D" if force else "-d", "--", branch]
    res = await run_git(*args, cwd=repo, check=False)
    if res.returncode == 0:
        return
    if "not fully merged" in res.stderr:
        raise UnmergedWork(
            f"branch {branch!r} has commits that are not merged: {res.stderr.strip()}",
            "merge or apply its work first, or delete it with force to discard the work",
        )
    if "checked out at" in res.stderr or "Cannot delete branch" in res.stderr:
        raise GitError(
            f"branch {branch!r} is checked out and cannot be deleted: {res.stderr.strip()}",
            "remove the worktree using it (or switch that checkout to another branch) first",
        )
    raise _command_failed(args, res)


async def checkpoint(worktree: Path, message: str) -> str | None:
    """Commit all work in ``worktree`` (tracked changes and untracked, non-ignored files).

    Returns the new commit's sha, or None when there was nothing to commit.
    Hooks are skipped: a checkpoint saves work, it is not a review gate.
    """
    # The message goes on stdin: any text, even starting with "-".
    result = await run_script(CHECKPOINT_SCRIPT, "checkpoint.sh", cwd=worktree,
                              input=_encode(message.strip() or "Palot checkpoint"))
    return result.stdout.strip() or None


async def _status_entries(repo: Path) -> list[tuple[str, str]]:
    """``(XY, path)`` pairs from ``git status --porcelain``, untracked files listed one by one."""
    res = await run_git(
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--ignore-submodules=none",
        cwd=repo,
        # Plain status would rewrite the index to refresh stat data; we
        # promise read-only inspection.
        env={"GIT_OPTIONAL_LOCKS": "0"},
    )
    return _parse_status(res.stdout)


async def is_dirty(repo: Path) -> bool:
    """Whether ``repo`` has tracked modifications, staged changes or untracked (non-ignored) files."""
    return bool(await _status_entries(repo))
