"""Moving a live agent between environments (worktree ⇄ container), journaled so nothing is ever lost."""

from .engine import MigrationEngine
from .manifest import STEPS, MigrationManifest, MigrationResult

__all__ = ["STEPS", "MigrationEngine", "MigrationManifest", "MigrationResult"]
