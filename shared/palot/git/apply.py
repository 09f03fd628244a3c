"""Applying a :func:`~palot.git.diff` patch to a checkout, all or nothing, with the refusals named."""

from __future__ import annotations

from pathlib import Path

from palot.errors import ApplyConflict, DirtyCheckout, InvalidInput

from .parse import _parse_numstat
from .refs import _toplevel
from .run import _encode, run_git
from .worktrees import _status_entries

# ``git apply`` settings that would otherwise come from user config and
# could reject or silently alter a clean patch.
_APPLY_OPTIONS: tuple[str, ...] = (
    "-c",
    "apply.whitespace=nowarn",
    "-c",
    "apply.ignoreWhitespace=no",
)


async def apply_patch(repo: Path, patch: str) -> list[str]:
    """Apply a patch made by :func:`diff` to ``repo``'s checkout as uncommitted changes.

    Refuses (:class:`DirtyCheckout`) when the checkout has tracked or staged
    changes, or an untracked file where the patch would write; refuses
    (:class:`ApplyConflict`) when the patch does not apply cleanly.  In both
    cases nothing on disk has changed.  Returns the paths the patch touches
    (renamed files under their new name), relative to the repository root.
    """
    if not patch.strip():
        raise InvalidInput("nothing to apply: the patch is empty", "make changes in the agent's worktree first")
    data = _encode(patch)
    if not data.endswith(b"\n"):
        data += b"\n"  # git apply rejects a patch whose last line is cut off
    root = await _toplevel(repo)

    listing = await run_git(*_APPLY_OPTIONS, "apply", "--numstat", "-z", "-", cwd=root, input=data, check=False)
    if listing.returncode != 0:
        raise InvalidInput(
            f"this is not a patch git can read: {listing.stderr.strip()}",
            "pass the patch text produced by Palot's diff, unmodified",
        )
    paths = list(_parse_numstat(listing.stdout))
    if not paths:
        raise InvalidInput("nothing to apply: the patch changes no file", "make changes in the agent's worktree first")

    entries = await _status_entries(root)
    tracked = sorted({name for xy, name in entries if xy not in ("??", "!!")})
    if tracked:
        raise DirtyCheckout(
            f"the checkout at {root} has uncommitted changes: {', '.join(tracked)}",
            "commit or stash them (`git stash -u`), then apply again",
        )
    untracked = {name for xy, name in entries if xy == "??"}
    in_the_way = [p for p in paths if p in untracked]
    if in_the_way:
        raise DirtyCheckout(
            f"untracked files in {root} are where the patch would write: {', '.join(in_the_way)}",
            "commit, stash (`git stash -u`) or move them away, then apply again",
        )

    # Dry run first: git apply itself is all-or-nothing for content, but
    # checking separately lets us report conflicts with nothing touched.
    check_args = [*_APPLY_OPTIONS, "apply", "--check", "--binary", "-"]
    checked = await run_git(*check_args, cwd=root, input=data, check=False)
    if checked.returncode != 0:
        # git names files as "error: <path>: ..." or "patch failed: <path>:<line>".
        conflicting = [p for p in paths if f" {p}:" in checked.stderr] or paths
        raise ApplyConflict(
            f"the patch does not apply cleanly to {root}; conflicting files: {', '.join(conflicting)}"
            f" (git said: {checked.stderr.strip()})",
            "ask the agent to rebase onto your current branch, or apply and resolve the files by hand",
        )
    await run_git(*_APPLY_OPTIONS, "apply", "--binary", "-", cwd=root, input=data)
    return paths
