"""The container tier: an agent in its own container, with its own OpenCode server inside (see
:mod:`.backend` for the workspace choice, and this package's README)."""

from .backend import ContainerBackend
from .engine import DockerEngine
from .options import ContainerOptions
from .start import AGENT_ENV_FILE, AGENT_UID, SCRIPTED_PORT, run_dir

__all__ = ["AGENT_ENV_FILE", "AGENT_UID", "SCRIPTED_PORT", "ContainerBackend", "ContainerOptions", "DockerEngine",
           "run_dir"]
