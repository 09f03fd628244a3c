"""Runtime backends: where agents' environments live (worktree now; container and cloud later)."""

from .base import EnvironmentSpec, RuntimeBackend
from .worktree import WorktreeBackend

__all__ = ["EnvironmentSpec", "RuntimeBackend", "WorktreeBackend"]
