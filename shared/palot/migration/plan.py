"""A move as data: its steps, and the decisions taken along the way, as pure functions (no I/O).

The names and order of the steps are :data:`palot.api.STEPS` (front ends count them); :data:`LABELS` says
each one as progress, and the engine's table (:mod:`.engine`) gives each its work and its undo. Steps before
``resume`` can be undone; ``resume`` begins with the commit point, after which a move is only finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..api import STEPS
from .manifest import MigrationManifest, ProcessRecord

#: What each step tells a person while it runs ({source}/{target}: the environment types).
LABELS: dict[str, str] = {
    "pause": "pausing the agent", "checkpoint": "bundling the code (commits, uncommitted and untracked files)",
    "export": "exporting the conversation and the running processes", "provision": "creating the {target}",
    "import_code": "importing the code", "import_session": "importing the conversation",
    "setup": "running the setup script and restarting processes", "resume": "switching the agent over",
    "cleanup": "removing the old {source}",
}
assert tuple(LABELS) == STEPS, "every step of api.STEPS has its label, in order"

#: The first step after the commit point.
COMMIT_STEP = "resume"
#: The steps whose effects a rollback undoes (every one before the commit point).
UNDOABLE = STEPS[:STEPS.index(COMMIT_STEP)]


def progress_line(step: str, source: str, target: str) -> str:
    """``[4/9] creating the container``: the line a person sees when ``step`` starts."""
    return f"[{STEPS.index(step) + 1}/{len(STEPS)}] " + LABELS[step].format(source=source, target=target)


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


def decide_recovery(state: str) -> Recovery:
    """What the next start does with a move a stopped Palot left in ``state``: one that had not reached its
    commit point is rolled back, one past it is finished; any other is over."""
    if state == "running":
        return "roll_back"
    if state == "committed":
        return "finish"
    return "nothing"


def steps_left(journal: set[tuple[str, str]]) -> list[str]:
    """The steps after the commit point not yet journaled done (what finishing a move still runs)."""
    return [s for s in STEPS[STEPS.index(COMMIT_STEP):] if (s, "done") not in journal]
