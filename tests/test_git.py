"""Tests for palot.git against real git repositories in tmp_path."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from palot import git
from palot.errors import (
    ApplyConflict,
    BranchExists,
    DirtyCheckout,
    GitError,
    InvalidInput,
    NotAGitRepo,
    PathNotFound,
)

pytestmark = pytest.mark.asyncio

# Deterministic bytes that are clearly binary (NUL bytes, every byte value).
BINARY = bytes(range(256)) * 4 + b"\x00\x01\x02PNG\x00"


def sh(cwd: Path, *args: str, input: bytes | None = None) -> str:
    """Run git synchronously for test setup; fails loudly."""
    env = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
    for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(k, None)
    res = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@localhost", "-c", "commit.gpgSign=false", *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        check=True,
    )
    return res.stdout.decode()


def commit_all(cwd: Path, message: str = "commit") -> str:
    sh(cwd, "add", "-A")
    sh(cwd, "commit", "-q", "--no-verify", "-m", message)
    return sh(cwd, "rev-parse", "HEAD").strip()


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under root (outside .git), keyed by relative path."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0] == ".git" or not p.is_file():
            continue
        out[str(rel)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    r.mkdir()
    sh(r, "init", "-q", "-b", "main")
    (r / "README.md").write_text("hello\n")
    (r / "src").mkdir()
    (r / "src" / "app.py").write_text("line1\nline2\nline3\n")
    (r / "old.txt").write_text("to be deleted\nsecond\n")
    (r / ".gitignore").write_text("*.log\n")
    commit_all(r, "initial")
    return r


# --- repo_root / refs ------------------------------------------------------


async def test_repo_root_and_subdirectory(repo: Path) -> None:
    assert await git.repo_root(repo) == repo.resolve()
    assert await git.repo_root(repo / "src") == repo.resolve()
    assert await git.repo_root(str(repo / "src" / "app.py")) == repo.resolve()


async def test_repo_root_errors(tmp_path: Path) -> None:
    with pytest.raises(PathNotFound):
        await git.repo_root(tmp_path / "nope")

    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotAGitRepo) as info:
        await git.repo_root(plain)
    assert "git init" in (info.value.fix or "")

    empty = tmp_path / "empty"
    empty.mkdir()
    sh(empty, "init", "-q")
    with pytest.raises(InvalidInput) as info2:
        await git.repo_root(empty)
    assert not isinstance(info2.value, NotAGitRepo)
    assert "commit" in (info2.value.fix or "")


async def test_resolve_commit_and_branches(repo: Path) -> None:
    head = sh(repo, "rev-parse", "HEAD").strip()
    assert await git.resolve_commit(repo) == head
    assert await git.resolve_commit(repo, "main") == head
    assert await git.resolve_commit(repo, head[:8]) == head
    with pytest.raises(InvalidInput) as info:
        await git.resolve_commit(repo, "no-such-branch")
    assert "unknown branch or commit" in info.value.message
    assert "git branch" in (info.value.fix or "")
    with pytest.raises(InvalidInput):
        await git.resolve_commit(repo, "--all")

    assert await git.current_branch(repo) == "main"
    assert await git.branch_exists(repo, "main")
    assert not await git.branch_exists(repo, "other")
    sh(repo, "checkout", "-q", "--detach")
    assert await git.current_branch(repo) is None


async def test_run_git_error_names_command(repo: Path) -> None:
    with pytest.raises(GitError) as info:
        await git.run_git("rev-parse", "--verify", "nothing-here", cwd=repo)
    assert "git rev-parse --verify nothing-here" in info.value.message
    res = await git.run_git("rev-parse", "--verify", "nothing-here", cwd=repo, check=False)
    assert res.returncode != 0 and res.stderr


def _running_with(argument: str) -> list[int]:
    """Processes of this machine whose command line has ``argument``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and argument.encode() in (entry / "cmdline").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


async def _gone(argument: str) -> bool:
    for _ in range(200):
        if not _running_with(argument):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_run_git_stops_a_git_that_runs_too_long_or_is_cancelled(tmp_path: Path) -> None:
    # A git that runs until stopped: the credential cache's daemon, in the foreground.
    (tmp_path / "cache").mkdir(mode=0o700)
    socket = str(tmp_path / "cache" / "socket")
    with pytest.raises(GitError, match="did not finish within"):
        await git.run_git("credential-cache--daemon", socket, cwd=tmp_path, timeout=0.5)
    assert await _gone(socket)

    task = asyncio.create_task(git.run_git("credential-cache--daemon", socket + "2", cwd=tmp_path))
    for _ in range(200):
        if _running_with(socket + "2"):
            break
        await asyncio.sleep(0.05)
    assert _running_with(socket + "2")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _gone(socket + "2")


async def test_validate_branch_name() -> None:
    for bad in ("a..b", "-x", "has space", "", "HEAD", "x.lock", "@{-1}", "a~b", "nul\0"):
        with pytest.raises(InvalidInput):
            await git.validate_branch_name(bad)
    for good in ("palot/agent-1", "feature/login_form", "fix-123"):
        await git.validate_branch_name(good)


async def test_is_ancestor(repo: Path) -> None:
    first = sh(repo, "rev-parse", "HEAD").strip()
    (repo / "README.md").write_text("changed\n")
    second = commit_all(repo, "second")
    assert await git.is_ancestor(repo, first, second)
    assert await git.is_ancestor(repo, first, "main")
    assert not await git.is_ancestor(repo, second, first)
    with pytest.raises(InvalidInput):
        await git.is_ancestor(repo, "nope", "main")


# --- worktrees -------------------------------------------------------------


async def test_add_worktree_and_branch_exists(repo: Path, tmp_path: Path) -> None:
    base = await git.resolve_commit(repo)
    wt = tmp_path / "deep" / "parents" / "wt1"
    await git.add_worktree(repo, wt, "palot/one", base)
    assert (wt / "README.md").read_text() == "hello\n"
    assert await git.current_branch(wt) == "palot/one"
    assert await git.branch_exists(repo, "palot/one")

    with pytest.raises(BranchExists) as info:
        await git.add_worktree(repo, tmp_path / "wt2", "palot/one", base)
    assert "branch name" in (info.value.fix or "")
    assert not (tmp_path / "wt2").exists()

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "file").write_text("x")
    with pytest.raises(InvalidInput):
        await git.add_worktree(repo, occupied, "palot/two", base)
    assert not await git.branch_exists(repo, "palot/two")

    with pytest.raises(InvalidInput):
        await git.add_worktree(repo, tmp_path / "wt3", "bad name", base)


async def test_checkpoint_then_remove_keeps_branch(repo: Path, tmp_path: Path) -> None:
    base = await git.resolve_commit(repo)
    wt = tmp_path / "wt"
    await git.add_worktree(repo, wt, "palot/cp", base)
    assert await git.checkpoint(wt, "nothing yet") is None
    assert not await git.is_dirty(wt)

    (wt / "src" / "app.py").write_text("line1\nCHANGED\nline3\n")
    (wt / "new.txt").write_text("brand new\n")
    (wt / "debug.log").write_text("ignored\n")
    assert await git.is_dirty(wt)
    sha = await git.checkpoint(wt, "Palot checkpoint")
    assert sha and sha == sh(repo, "rev-parse", "palot/cp").strip()
    assert not await git.is_dirty(wt)
    assert sh(repo, "log", "-1", "--format=%an <%ae>", "palot/cp").strip() == "Palot <palot@localhost>"
    files = sh(repo, "ls-tree", "-r", "--name-only", "palot/cp").split()
    assert "new.txt" in files and "debug.log" not in files

    # The message is any text (on stdin, never an option), and a hook that would refuse never runs.
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    (wt / "later.txt").write_text("later\n")
    assert await git.checkpoint(wt, "--amend is not an option here\n\nthe body")
    assert sh(repo, "log", "-1", "--format=%s", "palot/cp").strip() == "--amend is not an option here"

    # Uncommitted work blocks a plain remove; force removes it.
    (wt / "scratch.txt").write_text("x")
    with pytest.raises(GitError):
        await git.remove_worktree(repo, wt)
    await git.remove_worktree(repo, wt, force=True)
    assert not wt.exists()
    await git.remove_worktree(repo, wt)  # idempotent
    assert sh(repo, "show", "palot/cp:new.txt") == "brand new\n"
    assert str(wt) not in sh(repo, "worktree", "list")

    with pytest.raises(GitError):  # not merged into main
        await git.delete_branch(repo, "palot/cp")
    await git.delete_branch(repo, "palot/cp", force=True)
    assert not await git.branch_exists(repo, "palot/cp")
    await git.delete_branch(repo, "palot/cp")  # idempotent


async def test_remove_worktree_deleted_by_hand(repo: Path, tmp_path: Path) -> None:
    import shutil

    wt = tmp_path / "gone"
    await git.add_worktree(repo, wt, "palot/gone", await git.resolve_commit(repo))
    shutil.rmtree(wt)
    await git.remove_worktree(repo, wt)
    assert str(wt) not in sh(repo, "worktree", "list")
    await git.delete_branch(repo, "palot/gone")  # merged (no new commits): plain delete works


async def test_is_dirty(repo: Path) -> None:
    assert not await git.is_dirty(repo)
    (repo / "x.log").write_text("ignored")
    assert not await git.is_dirty(repo)
    (repo / "untracked.txt").write_text("u")
    assert await git.is_dirty(repo)
    (repo / "untracked.txt").unlink()
    (repo / "README.md").write_text("edit\n")
    assert await git.is_dirty(repo)
    sh(repo, "add", "README.md")
    assert await git.is_dirty(repo)


# --- diff ------------------------------------------------------------------


async def _agent_with_work(repo: Path, tmp_path: Path) -> tuple[Path, str]:
    """A worktree with a commit, an uncommitted edit, untracked text + binary, and a deletion."""
    base = await git.resolve_commit(repo)
    wt = tmp_path / "agent"
    await git.add_worktree(repo, wt, "palot/agent", base)
    (wt / "README.md").write_text("hello\nworld\n")  # committed: +1
    commit_all(wt, "agent commit")
    (wt / "src" / "app.py").write_text("line1\nLINE2\nline3\nline4\n")  # uncommitted: +2 -1
    (wt / "notes.md").write_text("a\nb\nc\n")  # untracked text: +3
    (wt / "img.bin").write_bytes(BINARY)  # untracked binary
    (wt / "old.txt").unlink()  # deleted: -2
    (wt / "skip.log").write_text("ignored\n")  # ignored: not in diff
    return wt, base


async def test_diff_full_state_without_touching_index(repo: Path, tmp_path: Path) -> None:
    wt, base = await _agent_with_work(repo, tmp_path)
    (wt / "staged.txt").write_text("staged\n")
    sh(wt, "add", "staged.txt")  # something already in the real index
    status_before = sh(wt, "status", "--porcelain")
    index_path = Path(sh(wt, "rev-parse", "--git-path", "index").strip())
    if not index_path.is_absolute():
        index_path = wt / index_path
    index_before = index_path.read_bytes()
    files_before = tree_hashes(wt)

    d = await git.diff(wt, base)

    assert sh(wt, "status", "--porcelain") == status_before
    assert index_path.read_bytes() == index_before
    assert tree_hashes(wt) == files_before

    by_path = {f.path: f for f in d.files}
    assert set(by_path) == {"README.md", "src/app.py", "notes.md", "img.bin", "old.txt", "staged.txt"}
    assert (by_path["README.md"].status, by_path["README.md"].additions, by_path["README.md"].deletions) == (
        "modified",
        1,
        0,
    )
    assert (by_path["src/app.py"].additions, by_path["src/app.py"].deletions) == (2, 1)
    assert (by_path["notes.md"].status, by_path["notes.md"].additions) == ("added", 3)
    img = by_path["img.bin"]
    assert (img.status, img.binary, img.additions, img.deletions) == ("added", True, 0, 0)
    assert (by_path["old.txt"].status, by_path["old.txt"].deletions) == ("deleted", 2)
    assert d.additions == 1 + 2 + 3 + 1 and d.deletions == 1 + 2
    assert not d.is_empty
    assert d.base_commit == base
    assert "GIT binary patch" in d.patch
    assert "skip.log" not in d.patch


async def test_diff_path_filter_rename_and_empty(repo: Path, tmp_path: Path) -> None:
    wt, base = await _agent_with_work(repo, tmp_path)
    d = await git.diff(wt, base, path="notes.md")
    assert [f.path for f in d.files] == ["notes.md"]
    assert "img.bin" not in d.patch and "notes.md" in d.patch

    sh(repo, "mv", "src/app.py", "src/main.py")
    renamed = await git.diff(repo, base)
    assert [(f.status, f.path, f.old_path) for f in renamed.files] == [("renamed", "src/main.py", "src/app.py")]

    sh(repo, "mv", "src/main.py", "src/app.py")
    empty = await git.diff(repo, base)
    assert empty.is_empty and empty.files == [] and empty.additions == 0


async def test_diff_of_one_file_is_its_part_of_the_whole_diff(repo: Path, tmp_path: Path) -> None:
    wt, base = await _agent_with_work(repo, tmp_path)
    (wt / "logs").mkdir()
    (wt / "logs" / "kept.log").write_text("tracked although ignored\n")
    sh(wt, "add", "-f", "logs/kept.log")  # a tracked file the ignore rules match
    sh(wt, "commit", "-q", "--no-verify", "-m", "a log kept", "--", "logs/kept.log")
    whole = await git.diff(wt, base)
    assert "logs/kept.log" in {f.path for f in whole.files}

    for file in whole.files:
        one = await git.diff(wt, base, path=file.path)
        assert one.files == [file]
        assert one.patch in whole.patch and one.patch.startswith(f"diff --git a/{file.path} ")
        # The same file, asked from a folder inside the worktree.
        assert await git.diff(wt / "src", base, path=file.path) == one
    # An ignored file, and one that is nowhere: no change to show.
    for path in ("skip.log", "nowhere.txt"):
        assert (await git.diff(wt, base, path=path)).is_empty


# --- apply_patch -----------------------------------------------------------


async def test_apply_patch_round_trip(repo: Path, tmp_path: Path) -> None:
    wt, base = await _agent_with_work(repo, tmp_path)
    (wt / "dir with space").mkdir()
    (wt / "dir with space" / "ünï.txt").write_text("unicode path\n")
    (wt / "latin1.txt").write_bytes(b"caf\xe9\n")  # not UTF-8, yet text to git
    d = await git.diff(wt, base)

    changed = await git.apply_patch(repo, d.patch)
    assert set(changed) == {f.path for f in d.files}
    assert (repo / "img.bin").read_bytes() == BINARY
    assert (repo / "notes.md").read_text() == "a\nb\nc\n"
    assert (repo / "README.md").read_text() == "hello\nworld\n"
    assert (repo / "src" / "app.py").read_text() == "line1\nLINE2\nline3\nline4\n"
    assert (repo / "dir with space" / "ünï.txt").read_text() == "unicode path\n"
    assert (repo / "latin1.txt").read_bytes() == b"caf\xe9\n"
    assert not (repo / "old.txt").exists()
    # Working-tree changes only: no commit, nothing staged.
    assert await git.resolve_commit(repo) == base
    assert sh(repo, "diff", "--cached", "--name-only") == ""


async def test_apply_patch_refuses_dirty_checkout(repo: Path, tmp_path: Path) -> None:
    wt, base = await _agent_with_work(repo, tmp_path)
    d = await git.diff(wt, base)

    (repo / "src" / "app.py").write_text("user edit\n")
    before = tree_hashes(repo)
    with pytest.raises(DirtyCheckout) as info:
        await git.apply_patch(repo, d.patch)
    assert "src/app.py" in info.value.message
    assert "stash" in (info.value.fix or "")
    assert tree_hashes(repo) == before
    sh(repo, "checkout", "--", "src/app.py")

    # An untracked file where the patch would create one.
    (repo / "notes.md").write_text("mine\n")
    before = tree_hashes(repo)
    with pytest.raises(DirtyCheckout) as info:
        await git.apply_patch(repo, d.patch)
    assert "notes.md" in info.value.message
    assert tree_hashes(repo) == before

    # Unrelated untracked files are fine.
    (repo / "notes.md").unlink()
    (repo / "unrelated.txt").write_text("x\n")
    await git.apply_patch(repo, d.patch)
    assert (repo / "img.bin").read_bytes() == BINARY


async def test_apply_patch_conflict_changes_nothing(repo: Path, tmp_path: Path) -> None:
    wt, base = await _agent_with_work(repo, tmp_path)
    d = await git.diff(wt, base)

    # The user commits a conflicting change to the same lines.
    (repo / "src" / "app.py").write_text("line1\nUSER\nline3\n")
    commit_all(repo, "user change")
    before = tree_hashes(repo)
    status_before = sh(repo, "status", "--porcelain")
    with pytest.raises(ApplyConflict) as info:
        await git.apply_patch(repo, d.patch)
    assert "src/app.py" in info.value.message
    assert "img.bin" not in info.value.message.split("git said")[0]
    assert info.value.fix
    assert tree_hashes(repo) == before
    assert sh(repo, "status", "--porcelain") == status_before


async def test_apply_patch_empty(repo: Path) -> None:
    for empty in ("", "  \n"):
        with pytest.raises(InvalidInput) as info:
            await git.apply_patch(repo, empty)
        assert "nothing to apply" in info.value.message


# --- snapshots and bundles -------------------------------------------------


async def test_bundled_work_checks_out_elsewhere_as_the_same_files_and_leaves_the_source_alone(
    repo: Path, tmp_path: Path
) -> None:
    wt, base = await _agent_with_work(repo, tmp_path)
    status_before = sh(wt, "status", "--porcelain")
    head = sh(wt, "rev-parse", "HEAD").strip()
    ref = "refs/palot/migrations/mig_test"

    got_head, snap = await git.bundle_work(wt, tmp_path / "out" / "work.bundle", ref, base)

    assert got_head == head and sh(wt, "rev-parse", f"{snap}^").strip() == head
    assert sh(wt, "status", "--porcelain") == status_before  # branch, index and files untouched
    assert sh(wt, "for-each-ref", ref) == ""  # the ref was only the bundle's vehicle
    clone = tmp_path / "clone"
    sh(tmp_path, "clone", "-q", str(repo), str(clone))
    await git.checkout_snapshot(clone, tmp_path / "out" / "work.bundle", ref, "palot/agent")
    expected = {p: h for p, h in tree_hashes(wt).items() if not p.endswith(".log")}
    assert tree_hashes(clone) == expected  # uncommitted, untracked, binary and deleted files alike
    assert sh(clone, "rev-parse", "HEAD").strip() == head
    assert await git.current_branch(clone) == "palot/agent"


async def test_snapshot_records_the_working_tree_at_a_ref_with_the_message(repo: Path) -> None:
    (repo / "new.txt").write_text("new\n")
    commit = await git.snapshot(repo / "src", "refs/palot/snap", "palot: a snapshot")
    assert sh(repo, "rev-parse", "refs/palot/snap").strip() == commit
    assert sh(repo, "show", "-s", "--format=%an %s", commit).strip() == "Palot palot: a snapshot"
    assert "new.txt" in sh(repo, "ls-tree", "--name-only", commit)
    assert sh(repo, "status", "--porcelain").strip() == "?? new.txt"


async def test_a_cancelled_script_stops_the_git_it_started(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir(mode=0o700)
    socket = str(tmp_path / "cache" / "socket")
    task = asyncio.create_task(git.run_script('git credential-cache--daemon "$1"; echo after', "t.sh", socket,
                                              cwd=tmp_path))
    for _ in range(200):
        if _running_with(socket):
            break
        await asyncio.sleep(0.05)
    assert _running_with(socket)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _gone(socket)
