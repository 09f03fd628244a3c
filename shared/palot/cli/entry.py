"""The ``palot`` command line as a whole: the parser of every command group, and ``main`` (exit codes, errors
as one line with their fix, a bug's traceback in a file)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text

from .. import api
from ..client import PalotClient
from ..errors import PalotError
from .agents import _add_agent_commands, cmd_agents
from .common import EXIT_BUG, EXIT_ERROR, EXIT_INTERRUPTED, err_console
from .fleet import cmd_du, cmd_gc, cmd_models, cmd_projects, cmd_settings
from .inbox import _add_inbox_commands
from .requests import _help
from .service import cmd_service
from .templates import _add_template_commands

Extend = Callable[[Any], list[argparse.ArgumentParser]]


def build_parser(extend: Extend | None = None) -> argparse.ArgumentParser:
    """The command line; ``extend(subparsers)`` adds more commands (``palot.admin``'s) and returns those that
    take ``--json``."""
    p = argparse.ArgumentParser(prog="palot", description="A control plane for OpenCode coding agents.")
    sub = p.add_subparsers(dest="command", required=True)
    json_parsers = list(extend(sub)) if extend else []

    mo = sub.add_parser("models", help="the provider/model names agents can use (for --model)")
    mo.add_argument("project", nargs="?", help="a project's path (its opencode.json may add models; default: here)")
    mo.set_defaults(func=cmd_models)
    pj = sub.add_parser("projects", help="the projects Palot knows")
    pj.set_defaults(func=cmd_projects)
    ib = _add_inbox_commands(sub)
    se = sub.add_parser("settings", help="the settings in use (budgets, permission rules, notifications) "
                                         "and any mistake in settings.toml")
    se.set_defaults(func=cmd_settings)
    templates = _add_template_commands(sub)
    du = sub.add_parser("du", help="disk used per agent, project and environment type")
    du.set_defaults(func=cmd_du)
    gc = sub.add_parser("gc", help="find what no agent owns (worktrees, palot/* branches, containers, volumes, "
                                   "move leftovers …) with sizes; --yes removes what holds no work")
    gc.add_argument("--yes", "-y", action="store_true", help=_help(api.GcRequest, "yes"))
    gc.add_argument("--force", action="store_true", help=_help(api.GcRequest, "force"))
    gc.set_defaults(func=cmd_gc)

    ag = sub.add_parser("agents", help="list, spawn, steer and review agents")
    asub = ag.add_subparsers(dest="action", required=True)
    _add_agent_commands(asub)
    ag.set_defaults(func=cmd_agents)
    wa = asub.add_parser("watch", help="live events (with an agent: its events until it settles)")
    wa.add_argument("agent", nargs="?", help="only this agent, until it settles")

    sv = sub.add_parser("service", help="the Palot service of this PALOT_HOME: status, stop, restart, logs")
    ssub = sv.add_subparsers(dest="action", required=True)
    ssub.add_parser("status", help="version, pid, socket, OpenCode, agents and clients")
    st = ssub.add_parser("stop", help="stop the service (OpenCode keeps running; `palot down` stops both)")
    st.add_argument("--opencode", action="store_true", help="stop the shared OpenCode server too")
    ssub.add_parser("restart", help="stop the service and start it again with the same options")
    lg = ssub.add_parser("logs", help="the end of the service's log")
    lg.add_argument("-n", "--lines", type=int, default=50, help="how many lines (default 50)")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    sv.set_defaults(func=cmd_service)

    for sp_ in (*json_parsers, mo, pj, ib, se, du, gc, *templates, *asub.choices.values(),
                *ssub.choices.values()):
        sp_.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    args = (parser or build_parser()).parse_args(argv)
    try:
        return args.func(args)
    except PalotError as e:
        _print_error(args, e)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - a bug: one line for the person, the traceback in a file
        log_file = _log_traceback(e)
        _print_error(args, PalotError(f"palot failed unexpectedly ({type(e).__name__}: {str(e)[:300]})",
                                      f"this is a bug in Palot; the details are in {log_file}"), code="bug")
        return EXIT_BUG


def _print_error(args: argparse.Namespace, e: PalotError, code: str | None = None) -> None:
    if getattr(args, "json", False):
        print(json.dumps({"error": {"code": code or e.code, "message": e.message, "fix": e.fix}}))
    else:
        # Not wrapped: paths and commands in errors are copied from the terminal.
        err_console.print(Text.assemble(("error:", "red"), f" {e.message}",
                                        *(("\n", ("fix:", "yellow"), f" {e.fix}") if e.fix else ())), soft_wrap=True)


def _log_traceback(e: BaseException) -> str:
    import traceback

    text = "".join(traceback.format_exception(e))
    for folder in (PalotClient(autostart=False).paths.home / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "palot-cli-error.log"
            with open(path, "a") as fh:
                fh.write(f"--- {' '.join(sys.argv)}\n{text}\n")
            return str(path)
        except OSError:
            continue
    return "no file (no folder was writable)"
