"""What the editor needs that the core does not offer (yet): the smallest adapters over ``palot``.

``AgentService.apply`` applies all of an agent's changes; the code action
"Apply the agent's change to this file" needs one file of them. This applies
the agent's diff restricted to that file with the same checked apply the core
uses (refusing a dirty checkout or a conflict, with nothing written).
"""

from __future__ import annotations

from pathlib import Path

from palot import Palot, git
from palot.errors import InvalidState, ReadOnlyAgent


async def apply_file(palot: Palot, agent_ref: str, path: str) -> list[str]:
    """Apply the agent's changes to ``path`` (relative to the project) onto the user's checkout."""
    agent = await palot.agents.get(agent_ref)
    if agent.read_only:
        raise ReadOnlyAgent(f"agent {agent.id} is an OpenCode session Palot did not start, so it cannot apply it",
                            "spawn a Palot agent for this work")
    diff = await palot.agents.diff(agent.id, path=path)
    if not diff.patch.strip():
        raise InvalidState(f"agent {agent.id} has no changes to {path}", "wait for it to edit the file, or prompt it")
    changed = await git.apply_patch(Path(agent.project_path), diff.patch)
    palot.store.audit("applied", agent_id=agent.id, project_id=agent.project_id, files=changed, partial=True)
    return changed
