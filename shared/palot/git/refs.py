"""Repositories and refs: finding a repository's top, naming commits, branches and other refs.

Every question here is answered by git itself (``rev-parse``, ``show-ref``, ``check-ref-format``…), so the
rules are exactly git's.
"""

from __future__ import annotations

import os
from pathlib import Path

from palot.errors import GitError, InvalidInput, NotAGitRepo, PathNotFound

from .run import _command_failed, run_git


async def _toplevel(path: Path | str) -> Path:
    """Top of the work tree containing ``path`` (which may be a file)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise PathNotFound(f"path {p} does not exist", "check the path for typos, or create it first")
    start = p if p.is_dir() else p.parent
    res = await run_git("rev-parse", "--show-toplevel", cwd=start, check=False)
    if res.returncode == 0 and res.stdout.strip():
        return Path(res.stdout.strip()).resolve()
    stderr = res.stderr.strip()
    if "dubious ownership" in stderr:
        raise GitError(
            f"git refuses to use the repository at {p}: it is owned by another user",
            f"if you trust it, run `git config --global --add safe.directory {start.resolve()}`",
        )
    raise NotAGitRepo(
        f"{p} is not inside a git work tree",
        "run `git init` there, or pass the repository's path",
    )


async def repo_root(path: Path | str) -> Path:
    """The top directory of the git work tree containing ``path``.

    Raises :class:`PathNotFound`, :class:`NotAGitRepo`, or
    :class:`InvalidInput` when the repository has no commit yet (worktrees
    need a commit to branch from).
    """
    root = await _toplevel(path)
    res = await run_git("rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=root, check=False)
    if res.returncode != 0:
        raise InvalidInput(
            f"the repository at {root} has no commit yet",
            "make a first commit (e.g. `git add -A && git commit -m 'Initial commit'`), then try again",
        )
    return root


async def resolve_commit(repo: Path, ref: str = "HEAD") -> str:
    """The full commit sha that ``ref`` (branch, tag, sha, ``HEAD~2``...) names."""
    # A leading dash would be read as an option; nothing valid starts with one.
    if not ref or ref.startswith("-") or "\0" in ref:
        raise _unknown_ref(ref)
    res = await run_git(
        "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", cwd=repo, check=False
    )
    sha = res.stdout.strip()
    if res.returncode == 1 or (res.returncode == 0 and not sha):
        raise _unknown_ref(ref)
    if res.returncode != 0:
        raise _command_failed(["rev-parse", "--verify", ref], res)
    return sha


def _unknown_ref(ref: str) -> InvalidInput:
    return InvalidInput(
        f"unknown branch or commit {ref!r}",
        "run `git branch --all` to see branches, or `git log --oneline` to see commits",
    )


async def current_branch(repo: Path) -> str | None:
    """The short name of the checked-out branch, or None when HEAD is detached."""
    res = await run_git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=repo, check=False)
    if res.returncode == 0:
        return res.stdout.strip() or None
    if res.returncode == 1:  # 1 means "HEAD is not a symbolic ref", i.e. detached
        return None
    raise _command_failed(["symbolic-ref", "--quiet", "--short", "HEAD"], res)


async def branch_exists(repo: Path, branch: str) -> bool:
    """Whether a local branch called ``branch`` exists."""
    if not branch or "\0" in branch:
        return False
    res = await run_git("show-ref", "--verify", "--quiet", f"refs/heads/{branch}", cwd=repo, check=False)
    if res.returncode == 0:
        return True
    if res.returncode == 1:
        return False
    raise _command_failed(["show-ref", "--verify", f"refs/heads/{branch}"], res)


async def validate_branch_name(name: str) -> None:
    """Raise :class:`InvalidInput` unless git accepts ``name`` as a new branch name.

    Asks ``git check-ref-format --branch`` itself so the rules are exactly git's (in git's threads, off
    the event loop).
    """
    fix = "choose a name like `feature/login-form`: no spaces, `..`, `~^:?*[\\`, leading `-` or trailing `.lock`"
    # "@{" would be expanded by --branch (e.g. "@{-1}" = previous branch),
    # and control characters (NUL in particular) can't go on a command line.
    if not name or "@{" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInput(f"{name!r} is not a valid branch name", fix)
    # Run outside any repository so the answer doesn't depend on ours.
    result = await run_git("check-ref-format", "--branch", name, cwd=Path(os.path.abspath(os.sep)), check=False,
                           timeout=30)
    if result.returncode != 0:
        raise InvalidInput(f"{name!r} is not a valid branch name", fix)


async def is_ancestor(repo: Path, commit: str, ref: str) -> bool:
    """Whether ``commit`` is reachable from ``ref`` (a commit is its own ancestor)."""
    a = await resolve_commit(repo, commit)
    b = await resolve_commit(repo, ref)
    res = await run_git("merge-base", "--is-ancestor", a, b, cwd=repo, check=False)
    if res.returncode in (0, 1):
        return res.returncode == 0
    raise _command_failed(["merge-base", "--is-ancestor", a, b], res)


async def delete_ref(repo: Path, ref: str) -> None:
    """Delete ``ref`` if it exists."""
    await run_git("update-ref", "-d", ref, cwd=repo, check=False)


async def remote_url(repo: Path, remote: str = "origin") -> str | None:
    """The URL of ``remote``, or None when the repository has no such remote."""
    result = await run_git("remote", "get-url", remote, cwd=repo, check=False)
    return result.stdout.strip() or None if result.returncode == 0 else None
