"""The OpenCode server processes Palot runs: the one shared ``opencode serve`` (:class:`ServerManager`), its
``server.json`` and lock, the settings it starts with, and the process helpers they share."""

from . import limits
from .manager import ServerManager
from .process import end, free_port, package_root, pid_alive, terminate
from .settings import OFFLINE_ENV, ServerSettings
from .state import ServerState, StateFile

__all__ = ["OFFLINE_ENV", "ServerManager", "ServerSettings", "ServerState", "StateFile", "end", "free_port", "limits",
           "package_root", "pid_alive", "terminate"]
