"""Moving work between repositories: snapshots of a working tree, bundles, fetching and restoring them,
and pushing a branch.

The snapshot recipe is the shell script ``snapshot.sh`` beside this module (:data:`SNAPSHOT_SCRIPT`): run
here by :func:`snapshot` and :func:`bundle_work`, and sent as it is to an environment's daemon by the
cloud backend, so the two can never drift apart.
"""

from __future__ import annotations

from pathlib import Path

from palot.errors import GitError

from .refs import _toplevel
from .run import _encode, recipe, run_git, run_script

#: The snapshot recipe (see snapshot.sh): ``sh -c SNAPSHOT_SCRIPT snapshot.sh REF [BUNDLE BASE]`` in the
#: work tree's top folder, the commit message on stdin; prints the head and snapshot shas.
SNAPSHOT_SCRIPT: str = recipe("snapshot.sh")
#: The restore recipe (see restore.sh): ``sh -c RESTORE_SCRIPT restore.sh BUNDLE REF BRANCH`` in the
#: repository's top folder.
RESTORE_SCRIPT: str = recipe("restore.sh")


async def push_branch(repo: Path, branch: str, remote: str = "origin") -> None:
    """Push ``branch`` to ``remote`` and set it as the upstream (never forced)."""
    result = await run_git("push", "--set-upstream", remote, f"{branch}:{branch}", cwd=repo, check=False)
    if result.returncode != 0:
        raise GitError(
            f"could not push {branch} to {remote}: {result.stderr.strip()[-600:]}",
            "check that you can push to the remote (credentials, permissions), then try again",
        )


async def _run_snapshot(worktree: Path, message: str, *args: str) -> tuple[str, str]:
    root = await _toplevel(worktree)
    result = await run_script(SNAPSHOT_SCRIPT, "snapshot.sh", *args, cwd=root, input=_encode(message))
    head, commit = result.stdout.split()
    return head, commit


async def snapshot(worktree: Path, ref: str, message: str) -> str:
    """Record everything in ``worktree`` (commits, uncommitted edits, untracked files) as a commit at ``ref``.

    The commit's parent is HEAD and its tree is the working tree, so a
    bundle of it carries uncommitted and untracked (non-ignored) work,
    binary files too. The branch, the index and the files stay untouched.
    """
    _, commit = await _run_snapshot(worktree, message, ref)
    return commit


async def create_bundle(repo: Path, dest: Path, refs: list[str], *, since: str | None = None) -> None:
    """Write a git bundle of ``refs`` to ``dest``: all their history, or only what ``since`` lacks (the
    receiving repository must then have ``since``)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    exclude = [f"^{since}"] if since else []
    # Uncompressed: the bundle is read once, on this machine, and zlib is most of the time for big changes.
    await run_git("-c", "pack.compression=0", "bundle", "create", "--quiet", str(Path(dest).absolute()), *refs,
                  *exclude, cwd=repo)


async def bundle_work(worktree: Path, bundle: Path, ref: str, base: str) -> tuple[str, str]:
    """Snapshot all the work in ``worktree`` at ``ref`` and bundle it (only what ``base`` lacks).

    Returns (branch head, snapshot commit). The snapshot's parent is the head, so the bundle's one ref
    carries both the agent's commits and its uncommitted work. ``ref`` is deleted again once bundled.
    """
    bundle.parent.mkdir(parents=True, exist_ok=True)
    return await _run_snapshot(worktree, "palot: migration snapshot (uncommitted work)",
                               ref, str(Path(bundle).absolute()), base)


async def fetch_bundle(repo: Path, bundle: Path, refspecs: list[str]) -> None:
    """Fetch ``refspecs`` from a bundle file into ``repo`` (never forced: a diverged branch is an error)."""
    await run_git("fetch", "--quiet", "--no-tags", str(Path(bundle).absolute()), *refspecs, cwd=repo)


async def restore_snapshot(worktree: Path, commit: str) -> None:
    """Make ``worktree``'s files exactly those of the snapshot ``commit``, left uncommitted on the current HEAD.

    Files the snapshot does not have are removed; files it added stay untracked.
    """
    await run_git("read-tree", "-u", "--reset", commit, cwd=worktree)
    await run_git("reset", "--quiet", cwd=worktree)


async def checkout_snapshot(repo: Path, bundle: Path, ref: str, branch: str) -> None:
    """Put a :func:`bundle_work` bundle into ``repo``: ``branch`` at the snapshot's parent (the agent's head),
    the snapshot's files exactly, left uncommitted; whatever ``repo`` had checked out before is replaced."""
    await run_script(RESTORE_SCRIPT, "restore.sh", str(Path(bundle).absolute()), ref, branch, cwd=repo)
