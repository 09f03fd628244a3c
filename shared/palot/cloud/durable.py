"""Durable cloud workspaces: the save and restore commands Palot gives each cloud environment's Worker.

The Worker (``images/cloudflare/src/durable.ts``) runs them through the environment daemon and keeps what the
save writes in its R2 bucket: periodically (``SAVE_EVERY``), before the container sleeps and when the agent is
paused; at every start it puts the newest save back before OpenCode gets a request. What is saved is Palot's
own recipes, sent as they are: ``save.sh`` (palot.git's snapshot recipe, and ``opencode export`` of every
session) and ``restore.sh`` (the project's history from the base bundle or the project's remote —
``fetch_base.sh``, :mod:`palot.cloud.route` —, palot.git's restore recipe, and ``opencode import``), so the
Worker knows nothing of git or OpenCode and the recipes exist once.
"""

from __future__ import annotations

from importlib import resources

from .. import git
from .route import FETCH_BASE_SCRIPT

SAVE_SCRIPT: str = resources.files(__package__).joinpath("save.sh").read_text(encoding="utf-8")
RESTORE_SCRIPT: str = resources.files(__package__).joinpath("restore.sh").read_text(encoding="utf-8")


def commands(branch: str, base_commit: str, remote: str | None = None) -> dict[str, list[str]]:
    """The environment's save and restore commands (the Worker appends the path each one works with); a
    restore clones ``remote`` (the remote route) when the Worker holds no base bundle of the environment."""
    return {"save": ["sh", "-c", SAVE_SCRIPT, "save.sh", git.SNAPSHOT_SCRIPT, base_commit],
            "restore": ["sh", "-c", RESTORE_SCRIPT, "restore.sh", git.RESTORE_SCRIPT, FETCH_BASE_SCRIPT, branch,
                        base_commit, remote or ""]}
