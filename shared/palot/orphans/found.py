"""What a ``palot gc`` scan works with: an orphan found and how to remove it, what the scan knows (which
environments are live, which this home recorded, whether something is being made right now), and the git
and size questions that say what work an orphan holds."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from .. import api, git
from ..errors import PalotError
from ..paths import PalotPaths
from ..store import EnvironmentRecord, Store

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


@dataclass
class Scope:
    """What one scan knows: the home, its environment records, the live ones (their things are never
    orphans), every one this home recorded, and whether a spawn or move is in progress."""

    paths: PalotPaths
    store: Store
    envs: list[EnvironmentRecord]
    live: set[str]
    known: set[str]
    busy: bool

    def new(self, made_at: float) -> bool:
        """Made so recently, while a spawn or move runs, that it may be that one's (not yet recorded)."""
        return self.busy and time.time() - made_at < GRACE_SECONDS

    def new_path(self, path: Path) -> bool:
        try:
            return self.new(path.stat().st_mtime)
        except OSError:
            return False

    def ours(self, labels: dict[str, str]) -> bool:
        """Whether an engine object's labels say it is this home's."""
        home = labels.get("palot.home")
        if home is not None:
            return home == str(self.paths.home)
        return labels.get("palot.environment") in self.known  # made before Palot labelled its home


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


async def size(path: Path) -> int:
    return await asyncio.to_thread(tree_size, path)


async def git_out(repo: Path, *args: str) -> str | None:
    """git's output, or None when the command failed (a missing repository, an unknown ref)."""
    try:
        res = await git.run_git(*args, cwd=repo, check=False)
    except PalotError:
        return None
    return res.stdout if res.returncode == 0 else None


async def unreachable_commits(repo: Path, rev: str) -> int:
    """How many commits of ``rev`` no other ref of ``repo`` but ``palot/*`` ones holds, counting HEAD and the
    default branch (what 'merged' means for an orphan: its commits live on elsewhere)."""
    others = await git_out(repo, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes", "refs/tags")
    keep = [r for r in (others or "").split() if not r.startswith("refs/heads/palot/")]
    out = await git_out(repo, "rev-list", "--count", rev, "--not", "HEAD", *keep)
    return int(out.strip()) if out and out.strip().isdigit() else 0


async def unique_bytes(repo: Path, rev: str) -> int:
    """Bytes of the objects only ``rev`` holds (what deleting the branch would eventually free)."""
    objects = await git_out(repo, "rev-list", "--objects", rev, "--not", "HEAD")
    ids = "\n".join(line.split(" ", 1)[0] for line in (objects or "").splitlines() if line.strip())
    if not ids:
        return 0
    res = await git.run_git("cat-file", "--batch-check=%(objectsize:disk)", cwd=repo, input=(ids + "\n").encode(),
                            check=False)
    return sum(int(x) for x in res.stdout.split() if x.isdigit())


def held(path: Path) -> bool:
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
