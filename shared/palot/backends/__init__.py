"""Runtime backends: where agents' environments live (worktree, container, cloud)."""

from .base import EnvironmentSpec, RuntimeBackend
from .cloud import CloudBackend
from .container import ContainerBackend, ContainerOptions
from .worktree import WorktreeBackend

__all__ = ["CloudBackend", "ContainerBackend", "ContainerOptions", "EnvironmentSpec", "RuntimeBackend",
           "WorktreeBackend"]
