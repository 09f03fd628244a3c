"""Async wrappers over the real ``git`` command line.

Palot drives git only through ``git`` subprocesses (never a shell, never a
git library) so that it sees exactly what the user would see and respects
their repository configuration.  Every call:

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
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import threading
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from palot.errors import (
    ApplyConflict,
    BranchExists,
    DirtyCheckout,
    GitError,
    InvalidInput,
    NotAGitRepo,
    PathNotFound,
    UnmergedWork,
)

__all__ = [
    "Diff",
    "FileDiff",
    "GitResult",
    "add_worktree",
    "apply_patch",
    "branch_exists",
    "checkpoint",
    "current_branch",
    "delete_branch",
    "diff",
    "is_ancestor",
    "is_dirty",
    "remove_worktree",
    "repo_root",
    "resolve_commit",
    "run_git",
    "validate_branch_name",
]

# Options that go before every git sub-command.
_BASE_OPTIONS: tuple[str, ...] = ("-c", "core.quotepath=off")

# Identity and safety switches for the commits Palot makes itself: a fixed
# author (so we never depend on, or write, the user's identity) and no
# signing, since a signing agent could prompt or fail in the background.
_COMMIT_OPTIONS: tuple[str, ...] = (
    "-c",
    "user.name=Palot",
    "-c",
    "user.email=palot@localhost",
    "-c",
    "commit.gpgSign=false",
)

# Inherited variables that would make git act on a different repository,
# index or object store than the one we name with ``cwd``.
_REDIRECTING_ENV: tuple[str, ...] = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
)

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

# ``git apply`` settings that would otherwise come from user config and
# could reject or silently alter a clean patch.
_APPLY_OPTIONS: tuple[str, ...] = (
    "-c",
    "apply.whitespace=nowarn",
    "-c",
    "apply.ignoreWhitespace=no",
)

_GENERIC_FIX = "read git's message above, fix what it describes in the repository, then try again"


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


#: Repositories Palot made itself that another uid owns (a container's workspace written by its
#: non-root user); git refuses those unless they are named in safe.directory.
_TRUSTED: set[str] = set()


def trust(path: Path) -> None:
    """Let Palot's git calls work in ``path`` although another user owns it (never ``*``)."""
    resolved = Path(path).resolve()
    # git checks the work tree for local commands and the .git directory when serving a fetch.
    _TRUSTED.update({str(resolved), str(resolved / ".git")})


def _git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for one git process: the caller's, made safe."""
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTING_ENV}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    if _TRUSTED:
        env["GIT_CONFIG_COUNT"] = str(len(_TRUSTED))
        for i, path in enumerate(sorted(_TRUSTED)):
            env[f"GIT_CONFIG_KEY_{i}"] = "safe.directory"
            env[f"GIT_CONFIG_VALUE_{i}"] = path
    if extra:
        env.update(extra)
    return env


def _command_text(args: tuple[str, ...] | list[str]) -> str:
    return "git " + " ".join(args)


# --- running git -----------------------------------------------------------

#: No git command Palot runs should take longer (a push to a slow remote is the longest).
GIT_TIMEOUT = 600.0


@dataclass(frozen=True)
class GitResult:
    """What one git process printed and how it exited."""

    stdout: str
    stderr: str
    returncode: int


#: Where git processes are started and waited for. Started from the event loop's thread, each would hold the
#: loop until the child runs (vfork): tens of ms per process on a busy machine, for every client's events.
_GIT_THREADS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="palot-git")


class _GitProcess:
    """One git process, run to its end in a thread (``run``); ``kill`` stops it from any thread."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], input: bytes | None) -> None:
        self.argv, self.cwd, self.env, self.input = argv, cwd, env, input
        self._proc: subprocess.Popen[bytes] | None = None
        self._killed = False
        self._lock = threading.Lock()

    def run(self, timeout: float) -> tuple[bytes, bytes, int]:
        """(stdout, stderr, exit code); ``subprocess.TimeoutExpired`` once it is stopped after ``timeout`` s."""
        with self._lock:
            if self._killed:
                raise ProcessLookupError("stopped before it started")
            self._proc = subprocess.Popen(
                self.argv, cwd=str(self.cwd), env=self.env,
                # Never inherit our stdin: git must not wait on a terminal.
                stdin=subprocess.PIPE if self.input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self._proc as proc:
            try:
                out, err = proc.communicate(self.input, timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        return out, err, proc.returncode

    def kill(self) -> None:
        with self._lock:
            self._killed = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()


async def run_git(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    timeout: float = GIT_TIMEOUT,
) -> GitResult:
    """Run ``git <args>`` in ``cwd`` and return its output (stopped after ``timeout`` seconds).

    ``env`` adds to (and overrides) the sanitised environment.  With
    ``check`` a non-zero exit raises :class:`GitError` naming the command
    and quoting git's stderr.
    """
    cwd = Path(cwd)
    # Checked up front: a missing cwd would otherwise surface as the same
    # FileNotFoundError as a missing git binary.
    if not cwd.is_dir():
        raise PathNotFound(
            f"directory {cwd} does not exist",
            "check the path, or recreate the directory",
        )
    git = _GitProcess(["git", *_BASE_OPTIONS, *args], cwd, _git_env(env), input)
    try:
        out, err, returncode = await asyncio.get_running_loop().run_in_executor(_GIT_THREADS, git.run, timeout)
    except FileNotFoundError as exc:
        raise GitError(
            "the `git` program was not found",
            "install git (2.30 or newer) and make sure it is on PATH",
        ) from exc
    except subprocess.TimeoutExpired:
        raise GitError(f"`{_command_text(args)}` did not finish within {timeout:.0f} s and was stopped",
                       "check that the repository and its remote are reachable, then try again") from None
    except BaseException:
        git.kill()  # cancelled or interrupted: don't leave an orphaned git behind
        raise
    result = GitResult(_decode(out), _decode(err), returncode)
    if check and result.returncode != 0:
        raise _command_failed(args, result)
    return result


def _command_failed(args: tuple[str, ...] | list[str], result: GitResult) -> GitError:
    stderr = result.stderr.strip() or result.stdout.strip() or "(no output)"
    return GitError(
        f"`{_command_text(args)}` failed (exit {result.returncode}): {stderr}",
        _GENERIC_FIX,
    )


# --- repositories and refs -------------------------------------------------


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


# --- worktrees and branches ------------------------------------------------

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


# --- working state ---------------------------------------------------------


async def checkpoint(worktree: Path, message: str) -> str | None:
    """Commit all work in ``worktree`` (tracked changes and untracked, non-ignored files).

    Returns the new commit's sha, or None when there was nothing to commit.
    Hooks are skipped: a checkpoint saves work, it is not a review gate.
    """
    await run_git("add", "--all", cwd=worktree)
    staged = await run_git("diff", "--cached", "--quiet", "--no-ext-diff", cwd=worktree, check=False)
    if staged.returncode == 0:
        return None
    if staged.returncode != 1:
        raise _command_failed(["diff", "--cached", "--quiet"], staged)
    await run_git(
        *_COMMIT_OPTIONS,
        "commit",
        "--quiet",
        "--no-verify",
        "--file=-",  # message on stdin: any text, even starting with "-"
        cwd=worktree,
        input=_encode(message.strip() or "Palot checkpoint"),
    )
    return (await run_git("rev-parse", "HEAD", cwd=worktree)).stdout.strip()


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
    fields = res.stdout.split("\0")
    entries: list[tuple[str, str]] = []
    i = 0
    while i < len(fields):
        field = fields[i]
        i += 1
        if len(field) < 4:
            continue
        xy, name = field[:2], field[3:]
        entries.append((xy, name))
        if "R" in xy or "C" in xy:
            i += 1  # the next field is the rename/copy source
    return entries


async def is_dirty(repo: Path) -> bool:
    """Whether ``repo`` has tracked modifications, staged changes or untracked (non-ignored) files."""
    return bool(await _status_entries(repo))


# --- diffs -----------------------------------------------------------------


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


def _parse_numstat(output: str) -> dict[str, tuple[int, int, bool]]:
    """Parse ``--numstat -z`` output into ``{path: (additions, deletions, binary)}``."""
    return _numstat_fields(output.split("\0"))


def _numstat_fields(fields: list[str]) -> dict[str, tuple[int, int, bool]]:
    stats: dict[str, tuple[int, int, bool]] = {}
    i = 0
    while i < len(fields):
        field = fields[i]
        i += 1
        if not field:
            continue
        added, deleted, name = field.split("\t", 2)
        if name == "":  # rename/copy: "old\0new" follow
            name = fields[i + 1] if i + 1 < len(fields) else ""
            i += 2
        binary = added == "-"
        stats[name] = (0 if binary else int(added), 0 if binary else int(deleted), binary)
    return stats


def _parse_name_status(output: str) -> list[tuple[str, str, str | None]]:
    """Parse ``--name-status -z`` output into ``(status, path, old_path)`` triples."""
    return _name_status_fields(output.split("\0"))


def _name_status_fields(fields: list[str]) -> list[tuple[str, str, str | None]]:
    entries: list[tuple[str, str, str | None]] = []
    i = 0
    while i < len(fields):
        code = fields[i]
        i += 1
        if not code:
            continue
        letter = code[0]
        if letter in "RC":
            old, new = fields[i], fields[i + 1]
            i += 2
            entries.append((letter, new, old if letter == "R" else None))
        else:
            entries.append((letter, fields[i], None))
            i += 1
    return entries


def _parse_summary_and_patch(
    output: str,
) -> tuple[list[tuple[str, str, str | None]], dict[str, tuple[int, int, bool]], str]:
    """Split ``--raw --numstat -z --patch`` output into the files' ``(status, path, old_path)``, their numstat
    and the patch.

    Raw records (``:modes shas status\\0path\\0``, two paths for a rename or copy) come first, then one
    numstat record per file, then an empty field and the patch (no NUL in it: binary files are base85).
    """
    fields = output.split("\0")
    codes: list[str] = []  # the raw records as ``--name-status -z`` prints them
    i = 0
    while i < len(fields) and fields[i].startswith(":"):
        code = fields[i].rsplit(" ", 1)[1]
        paths = 2 if code[:1] in ("R", "C") else 1
        codes += [code, *fields[i + 1:i + 1 + paths]]
        i += 1 + paths
    end = fields.index("", i) if "" in fields[i:] else len(fields)
    return _name_status_fields(codes), _numstat_fields(fields[i:end]), "\0".join(fields[end + 1:])


async def diff(worktree: Path, base_commit: str, *, path: str | None = None) -> Diff:
    """Everything in ``worktree`` that differs from ``base_commit``, as a binary-safe patch.

    Covers commits on the worktree's branch, uncommitted edits and untracked
    (non-ignored) files.  The worktree's real index and files are left
    untouched: the snapshot is staged into a throwaway index.  ``path``
    restricts the diff to that one file (relative to the worktree root).
    """
    with tempfile.TemporaryDirectory(prefix="palot-index-") as tmp:
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


async def remote_url(repo: Path, remote: str = "origin") -> str | None:
    """The URL of ``remote``, or None when the repository has no such remote."""
    result = await run_git("remote", "get-url", remote, cwd=repo, check=False)
    return result.stdout.strip() or None if result.returncode == 0 else None


async def push_branch(repo: Path, branch: str, remote: str = "origin") -> None:
    """Push ``branch`` to ``remote`` and set it as the upstream (never forced)."""
    result = await run_git("push", "--set-upstream", remote, f"{branch}:{branch}", cwd=repo, check=False)
    if result.returncode != 0:
        raise GitError(
            f"could not push {branch} to {remote}: {result.stderr.strip()[-600:]}",
            "check that you can push to the remote (credentials, permissions), then try again",
        )


# --- moving work between repositories --------------------------------------


async def snapshot(worktree: Path, ref: str, message: str) -> str:
    """Record everything in ``worktree`` (commits, uncommitted edits, untracked files) as a commit at ``ref``.

    The commit's parent is HEAD and its tree is the working tree, so a
    bundle of it carries uncommitted and untracked (non-ignored) work,
    binary files too. The branch, the index and the files stay untouched.
    """
    root = await _toplevel(worktree)
    with tempfile.TemporaryDirectory(prefix="palot-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        await run_git("read-tree", "HEAD", cwd=root, env=env)
        # Fast zlib: these objects live only until the move is done (a move is on the clock).
        await run_git("-c", "core.looseCompression=1", "add", "--all", cwd=root, env=env)
        tree = (await run_git("write-tree", cwd=root, env=env)).stdout.strip()
    head = await resolve_commit(root, "HEAD")
    commit = (await run_git(*_COMMIT_OPTIONS, "commit-tree", tree, "-p", head, "-F", "-", cwd=root,
                            input=_encode(message))).stdout.strip()
    await run_git("update-ref", ref, commit, cwd=root)
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
    carries both the agent's commits and its uncommitted work.
    """
    commit = await snapshot(worktree, ref, "palot: migration snapshot (uncommitted work)")
    await create_bundle(worktree, bundle, [ref], since=base)
    return await resolve_commit(worktree, f"{commit}^"), commit


async def changed_paths(repo: Path, base: str, commit: str) -> list[str]:
    """The files that differ between two commits (renames count once, as in :func:`diff`), without a patch."""
    res = await run_git("diff", *_DIFF_OPTIONS, "--name-status", "-z", base, commit, cwd=repo)
    return [name for _, name, _ in _parse_name_status(res.stdout)]


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
    await fetch_bundle(repo, bundle, [f"+{ref}:{ref}"])
    await run_git("checkout", "--quiet", "--force", "-B", branch, f"{ref}^", cwd=repo)
    await run_git("clean", "-fdq", cwd=repo)
    await restore_snapshot(repo, ref)
    await delete_ref(repo, ref)


async def delete_ref(repo: Path, ref: str) -> None:
    """Delete ``ref`` if it exists."""
    await run_git("update-ref", "-d", ref, cwd=repo, check=False)
