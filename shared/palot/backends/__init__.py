"""Runtime backends: where agents' environments live (worktree and container; cloud later)."""

from .base import EnvironmentSpec, RuntimeBackend
from .container import ContainerBackend, ContainerOptions
from .worktree import WorktreeBackend

__all__ = ["ContainerBackend", "ContainerOptions", "EnvironmentSpec", "RuntimeBackend", "WorktreeBackend"]
