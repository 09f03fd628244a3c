"""The commands about the fleet as a whole: ``palot models``, ``projects``, ``settings``, ``du`` and ``gc``."""

from __future__ import annotations

import argparse
import asyncio

from rich.text import Text

from .. import api, render
from ..client import PalotClient
from .common import EXIT_FAILED, EXIT_OK, _dump, _print_each, _progress, _with_client, console
from .requests import request_args


def cmd_models(args: argparse.Namespace) -> int:
    models = asyncio.run(_with_client(args, lambda c: c.call("models", request_args("models", args))))
    if args.json:
        _dump({"models": models})
    else:
        _print_each(models, Text, "no models: add a provider to your OpenCode config (`opencode auth login`)")
    return EXIT_OK


def cmd_projects(args: argparse.Namespace) -> int:
    projects = asyncio.run(_with_client(args, lambda c: c.projects()))
    if args.json:
        _dump(projects)
    else:
        _print_each(projects, lambda p: Text.assemble((p.name, "bold"), f"  {p.path}  ({p.id})"),
                    "no projects yet — `palot agents spawn PATH PROMPT` adds one")
    return EXIT_OK


def cmd_settings(args: argparse.Namespace) -> int:
    """``palot settings``: the settings the service runs with; exit 1 when the file on disk has a mistake."""
    view = asyncio.run(_with_client(args, lambda c: c.call("settings")))
    if args.json:
        _dump(view)
    else:
        console.print(render.settings_text(view), soft_wrap=True)
    return EXIT_FAILED if view.error else EXIT_OK


def cmd_du(args: argparse.Namespace) -> int:
    """``palot du``: disk used per agent, project and environment type."""

    async def run(client: PalotClient) -> tuple[api.DiskUse, dict[str, str]]:
        use = await client.call("du")
        titles = {a.id: a.title for a in await client.list(include_archived=True, include_external=False)}
        return use, titles

    use, titles = asyncio.run(_with_client(args, run))
    if args.json:
        _dump(use)
    else:
        console.print(render.du_text(use, titles), soft_wrap=True, end="")
    return EXIT_OK


def cmd_gc(args: argparse.Namespace) -> int:
    """``palot gc``: what no agent owns; ``--yes`` removes what holds no work. Exit 1 when something that
    holds work was left (or could not be removed)."""
    report = asyncio.run(_with_client(args, lambda c: c.call("gc", request_args("gc", args),
                                                            progress=_progress(args))))
    if args.json:
        _dump(report)
    else:
        console.print(render.gc_text(report), soft_wrap=True, end="")
    left = [o for o in report.orphans if not o.removed and (o.error or (report.removing and not o.safe))]
    return EXIT_FAILED if left else EXIT_OK
