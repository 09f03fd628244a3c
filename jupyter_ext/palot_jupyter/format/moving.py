"""Moving an agent to another environment: the move control's options, its plan, progress and outcome (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from palot.api import Agent, AgentStatus, MigrationResult

from .badges import esc, status_icon

#: What the move control calls each environment ("Move to Local Container", "… to a local container").
MOVE_NOUN = {"worktree": "local worktree", "container": "local container", "cloud": "cloud environment"}


def _move_noun(env_type: str) -> str:
    return MOVE_NOUN.get(env_type, env_type)


def can_move(agent: Agent) -> bool:
    """Only Palot's own agents move, and not while they are archived, being set up or already moving."""
    return not agent.read_only and agent.status not in (
        AgentStatus.ARCHIVED, AgentStatus.PROVISIONING, AgentStatus.MIGRATING)


def move_targets(agent: Agent, environments: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The move dropdown's (label, value) options: every environment but the one the agent is in."""
    return tuple((f"Move to {_move_noun(e).title()}", e) for e in environments if e != agent.environment.type)


def move_plan_html(agent: Agent, target: str) -> str:
    """What a move will do, shown before the user confirms it."""
    branch = f" <code>{esc(agent.environment.branch)}</code>" if agent.environment.branch else ""
    return (
        f'<div class="palot-move-plan"><b>Move to a {esc(_move_noun(target))}?</b> Palot pauses the agent '
        f"(a turn in progress stops, and the agent carries on after the move), then takes its branch{branch} "
        f"with every uncommitted and untracked file, its whole conversation and its running processes into a "
        f"new {esc(_move_noun(target))}, and removes the old {esc(_move_noun(agent.environment.type))}. "
        "Your checkout is not touched. Click <b>Confirm move</b> to start.</div>"
    )


def move_progress_html(target: str, message: str) -> str:
    """A move that is running: its latest step (``[3/9] exporting the conversation …``)."""
    return (f'<div class="palot-moving">{status_icon(AgentStatus.MIGRATING)} Moving to a {esc(_move_noun(target))}'
            f"… {esc(message)}</div>")


def move_result_text(result: MigrationResult) -> str:
    """What a finished move did, in one line."""
    files = "1 changed file" if result.files_changed == 1 else f"{result.files_changed} changed files"
    text = (f"Moved to a {_move_noun(result.target)} in {result.seconds:.1f} s: branch {result.branch}, "
            f"{result.messages} messages, {files}.")
    if result.processes_restarted:
        text += f" Restarted: {', '.join(result.processes_restarted)}."
    if result.resumed:
        text += " The agent carries on where it stopped."
    return text
