"""A move's decisions, as pure functions (no I/O): the ports a container publishes, the agent's status and
resume after a move (or its undo), the note it is resumed with, and what a restart does with a move left
unfinished.

The names and order of the steps are :data:`palot.api.STEPS` (front ends count them); the table in
:mod:`.steps` gives each its label, its work and its undo. Steps before ``resume`` can be undone; ``resume``
begins with the commit point, after which a move is only finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..api import STEPS
from ..store import MigrationRecord
from .manifest import MigrationManifest, ProcessRecord

#: The first step after the commit point.
COMMIT_STEP = "resume"
#: The steps whose effects a rollback undoes (every one before the commit point).
UNDOABLE = STEPS[:STEPS.index(COMMIT_STEP)]


def target_options(target: str, options: dict[str, Any], processes: list[ProcessRecord]) -> dict[str, Any]:
    """The target's options once the running processes are known: into a container with a network, the
    ports the agent's dev servers listen on are published again (unless the options name ports)."""
    ports = sorted({port for p in processes for port in p.ports})
    if ports and target == "container" and options.get("network", "full") != "none" and "ports" not in options:
        return {**options, "ports": ports}
    return options


@dataclass(frozen=True)
class MovePlan:
    """What a move decides about the agent once it is paused."""

    status_after: str  # the agent's status in the target (and back in the source, if the move is undone)
    send_note: bool  # whether the resume note is sent as a prompt


def plan_move(manifest: MigrationManifest, resume: bool | None) -> MovePlan:
    """The agent's status after the move (or its undo) and whether it is resumed: a move that stopped a
    turn leaves the agent paused and, unless ``resume`` says otherwise, resumes it; a note never twice."""
    was_busy = manifest.session.was_busy
    status = "paused" if was_busy else manifest.status_before
    wanted = was_busy if resume is None else resume
    return MovePlan(status_after=status, send_note=wanted and not manifest.session.resumed)


Recovery = Literal["roll_back", "finish", "nothing"]


def decide_recovery(record: MigrationRecord) -> Recovery:
    """What the next start does with a move a stopped Palot left as ``record`` says: one that had not reached
    its commit point is rolled back, one past it is finished; any other is over."""
    if record.state == "running":
        return "roll_back"
    if record.state == "committed":
        return "finish"
    return "nothing"


def steps_left(journal: set[tuple[str, str]]) -> list[str]:
    """The steps after the commit point not yet journaled done (what finishing a move still runs)."""
    return [s for s in STEPS[STEPS.index(COMMIT_STEP):] if (s, "done") not in journal]


def last_user_text(messages: list[dict[str, Any]]) -> str | None:
    """The text of the last prompt a person wrote in an ``opencode export``'s messages (what the agent was
    working on)."""
    for message in reversed(messages):
        if (message.get("info") or {}).get("role") == "user":
            texts = [p.get("text", "") for p in message.get("parts") or []
                     if p.get("type") == "text" and not p.get("synthetic")]
            if any(texts):
                return "\n".join(t for t in texts if t).strip()
    return None


WHERE = {"worktree": "a git worktree", "container": "a container", "cloud": "a cloud container"}


def resume_note(m: MigrationManifest, directory: str) -> str:
    """What the agent is told in its new environment (at ``directory``): where it is, what came with it, what
    was restarted, and what it was doing."""
    lines = [
        f"[Palot] You were moved from {WHERE.get(m.source.type, m.source.type)} to "
        f"{WHERE.get(m.target.type, m.target.type)}; your working directory is now {directory}.",
        f"Your branch {m.git.branch}, its commits, your uncommitted and untracked files and this conversation "
        "came with you.",
    ]
    if m.environment.processes:
        lines.append("Processes that were running were restarted: "
                     + "; ".join(f"`{p.command}`" + (f" (port {', '.join(map(str, p.ports))})" if p.ports else "")
                                 for p in m.environment.processes) + ".")
    if m.session.was_busy and m.session.last_prompt:
        prompt = m.session.last_prompt if len(m.session.last_prompt) <= 300 else m.session.last_prompt[:299] + "…"
        lines.append(f"You were working on: {prompt}")
    lines.append("Continue where you left off." if m.session.was_busy else "Carry on from here.")
    return "\n".join(lines)
