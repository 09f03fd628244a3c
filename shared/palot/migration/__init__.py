"""Moving a live agent between environments (worktree ⇄ container ⇄ cloud), journaled so nothing is ever lost
(see this package's README)."""

from .engine import MigrationEngine
from .manifest import STEPS, MigrationManifest, MigrationResult
from .steps import TABLE, MovingAgents, Step

__all__ = ["STEPS", "TABLE", "MigrationEngine", "MigrationManifest", "MigrationResult", "MovingAgents", "Step"]
