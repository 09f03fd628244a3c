"""``palot``: the command line, a thin client of the Palot service. Every command takes ``--json``.

Each agent command sends one :data:`palot.api.ACTIONS` request through :class:`palot.client.PalotClient`
(which starts the service when none runs); :data:`ACTION_COMMANDS` says which command runs which action,
and each request field is an argument of the same name. Machine administration (doctor, up/down, images,
cloud, demo, serve) is in :mod:`palot.admin`, the ``palot`` entry point, which adds those commands here.

One module per command group (see README.md): :mod:`.agents`, :mod:`.bulk`, :mod:`.inbox`,
:mod:`.templates`, :mod:`.fleet` (models, projects, settings, du, gc), :mod:`.service`; :mod:`.requests`
(command → request), :mod:`.common` (consoles, exit codes, output) and :mod:`.entry` (the parser, ``main``).
"""

from __future__ import annotations

from .agents import AGENT_ACTIONS, LONG_ACTIONS, cmd_agents, cmd_watch
from .bulk import BULK_COMMANDS, cmd_bulk
from .common import (
    EXIT_BUG,
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STILL_RUNNING,
    _dump,
    _progress,
    console,
    err_console,
)
from .entry import Extend, build_parser, main
from .fleet import cmd_du, cmd_gc, cmd_models, cmd_projects, cmd_settings
from .inbox import cmd_inbox
from .requests import ACTION_COMMANDS, NESTED, request_args
from .service import cmd_service, process_alive, service_status, wait_gone
from .templates import TEMPLATE_ACTIONS, cmd_templates

__all__ = [
    "ACTION_COMMANDS",
    "AGENT_ACTIONS",
    "BULK_COMMANDS",
    "EXIT_BUG",
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_STILL_RUNNING",
    "Extend",
    "LONG_ACTIONS",
    "NESTED",
    "TEMPLATE_ACTIONS",
    "_dump",
    "_progress",
    "build_parser",
    "cmd_agents",
    "cmd_bulk",
    "cmd_du",
    "cmd_gc",
    "cmd_inbox",
    "cmd_models",
    "cmd_projects",
    "cmd_service",
    "cmd_settings",
    "cmd_templates",
    "cmd_watch",
    "console",
    "err_console",
    "main",
    "process_alive",
    "request_args",
    "service_status",
    "wait_gone",
]
