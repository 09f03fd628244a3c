"""Async wrappers over the real ``git`` command line.

Palot drives git only through ``git`` subprocesses (never a git library; a recipe of several git
commands that must also run inside an environment is a shell script, ``snapshot.sh``) so that it sees
exactly what the user would see and respects their repository configuration.  Every call:

* passes ``-c core.quotepath=off`` so non-ASCII paths come back verbatim;
* sets ``GIT_TERMINAL_PROMPT=0`` so git never blocks waiting for a password;
* sets ``LC_ALL=C`` so the messages we inspect are always in English;
* drops inherited ``GIT_DIR``-style variables so a call can never be
  redirected to some other repository (e.g. when Palot runs inside a hook).

Nothing here writes to the user's global git configuration; identity and
other settings Palot needs are passed per command with ``-c``.

Text coming out of git is decoded as UTF-8 with ``surrogateescape`` so that
patches containing non-UTF-8 bytes survive a round trip through ``str``
(``apply_patch`` encodes them back the same way).

The modules (see README.md): ``run`` (the process runner), ``refs``, ``worktrees``, ``parse`` (git's
``-z`` output), ``diffs``, ``apply`` and ``transfer`` (snapshots, bundles, push). Every public name is
importable from ``palot.git`` itself.
"""

from __future__ import annotations

from .apply import apply_patch
from .diffs import Diff, FileDiff, changed_paths, diff, diff_refs
from .refs import (
    branch_exists,
    current_branch,
    delete_ref,
    is_ancestor,
    remote_url,
    repo_root,
    resolve_commit,
    validate_branch_name,
)
from .run import GIT_TIMEOUT, GitResult, recipe, run_git, run_script, trust
from .transfer import (
    RESTORE_SCRIPT,
    SNAPSHOT_SCRIPT,
    bundle_work,
    checkout_snapshot,
    create_bundle,
    fetch_bundle,
    push_branch,
    restore_snapshot,
    snapshot,
)
from .worktrees import CHECKPOINT_SCRIPT, add_worktree, checkpoint, delete_branch, is_dirty, remove_worktree, worktree_lock

__all__ = [
    "CHECKPOINT_SCRIPT",
    "GIT_TIMEOUT",
    "RESTORE_SCRIPT",
    "SNAPSHOT_SCRIPT",
    "Diff",
    "FileDiff",
    "GitResult",
    "add_worktree",
    "apply_patch",
    "branch_exists",
    "bundle_work",
    "changed_paths",
    "checkout_snapshot",
    "checkpoint",
    "create_bundle",
    "current_branch",
    "delete_branch",
    "delete_ref",
    "diff",
    "diff_refs",
    "fetch_bundle",
    "is_ancestor",
    "is_dirty",
    "push_branch",
    "remote_url",
    "remove_worktree",
    "repo_root",
    "resolve_commit",
    "restore_snapshot",
    "recipe",
    "run_git",
    "run_script",
    "snapshot",
    "trust",
    "validate_branch_name",
    "worktree_lock",
]
