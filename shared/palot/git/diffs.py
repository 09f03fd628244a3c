"""Diffs: a worktree's or a branch's changes against a base commit, as :class:`Diff` (an applicable,
binary-safe patch and per-file counts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..scratch import scratch_dir
from .parse import _parse_name_status, _parse_summary_and_patch
from .refs import _toplevel, resolve_commit
from .run import _command_failed, run_git

# Diff switches that make the patch independent of the user's diff config
# (noprefix, external diff tools, textconv, colour, relative), so that
# ``git apply`` can always read it back.
_DIFF_OPTIONS: tuple[str, ...] = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-relative",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "-M",
)


@dataclass(frozen=True)
class FileDiff:
    """One file in a :class:`Diff`."""

    path: str
    status: str  # "added" | "modified" | "deleted" | "renamed"
    additions: int
    deletions: int
    binary: bool
    old_path: str | None = None  # set for renames


@dataclass(frozen=True)
class Diff:
    """A worktree's changes against a base commit, as an applicable patch."""

    base_commit: str
    patch: str
    files: list[FileDiff]

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)

    @property
    def is_empty(self) -> bool:
        return not self.files and not self.patch.strip()


_STATUS_NAMES = {
    "A": "added",
    "C": "added",  # a copy is a new file
    "D": "deleted",
    "M": "modified",
    "T": "modified",  # type change (e.g. file <-> symlink)
    "R": "renamed",
}


async def diff(worktree: Path, base_commit: str, *, path: str | None = None) -> Diff:
    """Everything in ``worktree`` that differs from ``base_commit``, as a binary-safe patch.

    Covers commits on the worktree's branch, uncommitted edits and untracked
    (non-ignored) files.  The worktree's real index and files are left
    untouched: the snapshot is staged into a throwaway index.  ``path``
    restricts the diff to that one file (relative to the worktree root).
    """
    async with scratch_dir("palot-index-") as tmp:
        # A private index: `git add -A` into it captures untracked files
        # without staging anything in the user's (or agent's) real index.
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        # Few git processes, independent ones at once: each takes a few ms, many more when several agents
        # edit at once on a busy machine, and an editor waits for one file's diff after every agent edit.
        # (Paths are from the top of the work tree, whatever folder of it ``worktree`` is.)
        base, _ = await _together(resolve_commit(worktree, base_commit),
                                  run_git("read-tree", "HEAD", cwd=worktree, env=env))
        await _add_all(worktree, path, env)
        return await _diff(worktree, ["--cached", base], base, path=path, env=env)


async def _add_all(worktree: Path, path: str | None, env: dict[str, str]) -> None:
    """Stage the work tree (or only ``path``: no walk of the whole tree) into the private index of ``env``."""
    if path is None:
        await run_git("add", "--all", cwd=worktree, env=env)
        return
    args = ("add", "--all", "--", _pathspec(path))
    res = await run_git(*args, cwd=worktree, env=env, check=False)
    # Named alone, an ignored untracked file (exit 1) or one that is nowhere (128) is refused where
    # `add --all` passes it by: the index then holds for it what `add --all` would leave.
    refused = (res.returncode == 1 and "ignored by one of your .gitignore files" in res.stderr) or \
        (res.returncode == 128 and "did not match any files" in res.stderr)
    if res.returncode != 0 and not refused:
        raise _command_failed(args, res)


def _pathspec(path: str) -> str:
    """``path`` (from the top of the work tree) as a pathspec: a file name with "*" or ":" means just that file."""
    return f":(top,literal){path}"


async def _together(*steps: Awaitable[Any]) -> list[Any]:
    """The results of independent steps run at once; the first failure (in the order given) once all ended."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def diff_refs(repo: Path, base_commit: str, ref: str, *, path: str | None = None) -> Diff:
    """The committed difference between ``base_commit`` and ``ref`` (e.g. an archived agent's branch)."""
    base = await resolve_commit(repo, base_commit)
    target = await resolve_commit(repo, ref)
    return await _diff(await _toplevel(repo), [base, target], base, path=path)


async def _diff(root: Path, revs: list[str], base: str, *, path: str | None, env: dict[str, str] | None = None) -> Diff:
    spec = ["--", _pathspec(path)] if path else []
    # One git process for the files, their counts and the patch (three cost three times the time).
    res = await run_git("diff", *_DIFF_OPTIONS, "--binary", "--raw", "--numstat", "-z", "--patch", *revs, *spec,
                        cwd=root, env=env)
    names, stats, patch = _parse_summary_and_patch(res.stdout)
    files = []
    for letter, name, old in names:
        additions, deletions, binary = stats.get(name, (0, 0, False))
        files.append(
            FileDiff(
                path=name,
                status=_STATUS_NAMES.get(letter, "modified"),
                additions=additions,
                deletions=deletions,
                binary=binary,
                old_path=old,
            )
        )
    return Diff(base_commit=base, patch=patch, files=files)


async def changed_paths(repo: Path, base: str, commit: str) -> list[str]:
    """The files that differ between two commits (renames count once, as in :func:`diff`), without a patch."""
    res = await run_git("diff", *_DIFF_OPTIONS, "--name-status", "-z", base, commit, cwd=repo)
    return [name for _, name, _ in _parse_name_status(res.stdout)]
