"""Palot: a control plane for OpenCode coding agents.

The public API is small: :class:`Palot` wires everything; ``palot.agents``
(an :class:`~palot.agents.AgentService`) does every agent action; errors are
:class:`~palot.errors.PalotError` subclasses whose text names the fix.
"""

from .agents import ActivityItem, Agent, AgentDiff, AgentMessage, AgentService, AgentStatus
from .core import Palot
from .errors import PalotError
from .paths import PalotPaths

__version__ = "0.1.0"

__all__ = [
    "ActivityItem",
    "Agent",
    "AgentDiff",
    "AgentMessage",
    "AgentService",
    "AgentStatus",
    "Palot",
    "PalotError",
    "PalotPaths",
    "__version__",
]
