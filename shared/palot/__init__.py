"""Palot: a control plane for OpenCode coding agents.

Front ends use :mod:`palot.api` (the vocabulary) and :mod:`palot.client` (the typed client of the Palot
service). The service (``palot serve``) holds the core: :class:`Palot` wires the store, the shared
OpenCode server, the event hub and the agents. Errors are :class:`~palot.errors.PalotError` subclasses
whose text names the fix.

Names are imported lazily, so ``import palot.api`` does not load the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_LAZY = {
    "ActivityItem": "api", "Agent": "api", "AgentDiff": "api", "AgentMessage": "api", "AgentStatus": "api",
    "AgentService": "agents", "Palot": "core", "PalotError": "errors", "PalotPaths": "paths",
}

if TYPE_CHECKING:
    from .agents import AgentService
    from .api import ActivityItem, Agent, AgentDiff, AgentMessage, AgentStatus
    from .core import Palot
    from .errors import PalotError
    from .paths import PalotPaths


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'palot' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


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
