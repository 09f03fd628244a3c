"""What the migration tests compare before and after a move: files, git state and the conversation."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from palot import Palot

# Every byte value, so a move that mangles binary data cannot pass.
BINARY = bytes(range(256)) * 4


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` except git's own, with its bytes (symlinks as their target)."""
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            if dirpath == str(root) and name == ".git":  # a worktree's link to its repository
                continue
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            files[rel] = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
    return files


def git_out(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "safe.directory=*", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


@dataclass
class AgentState:
    files: dict[str, bytes]
    status: str  # git status --porcelain
    log: str  # the branch's commits
    messages: list[tuple[str, str]]  # (role, text)


async def capture(palot: Palot, agent_id: str) -> AgentState:
    rec = palot.store.get_agent(agent_id)
    env = palot.store.get_environment(rec.environment_id or "")
    assert env is not None
    root = await palot.backends[env.type].sync(env)  # the cloud tier's files come to this machine first
    messages = [(m.role, m.text) for m in await palot.agents.messages(agent_id)]
    return AgentState(files=tree(root), status=git_out(root, "status", "--porcelain", "--untracked-files=all"),
                      log=git_out(root, "log", "--format=%H %s", "HEAD"), messages=messages)


def make_work(root: Path) -> None:
    """Committed, uncommitted, untracked, deleted and binary work in an agent's checkout."""
    (root / "committed.txt").write_text("committed on the agent's branch\n")
    git_out(root, "add", "committed.txt")
    git_out(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "agent commit")
    (root / "README.md").write_text((root / "README.md").read_text() + "an uncommitted edit\n")
    (root / "untracked dir").mkdir(exist_ok=True)
    (root / "untracked dir" / "notes with spaces.md").write_text("untracked\n")
    (root / "picture.bin").write_bytes(BINARY)
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "run.sh").chmod(0o755)
