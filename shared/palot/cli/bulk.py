"""Bulk actions: ``palot agents bulk`` and ``archive``/``abort``/``destroy`` given filters instead of one agent
— the plan first (a dry run), then, confirmed or with ``--yes``, the plan carried out."""

from __future__ import annotations

import argparse
import asyncio
import sys

from rich.text import Text

from .. import api, render
from ..client import PalotClient
from ..errors import InvalidInput
from .common import EXIT_FAILED, EXIT_OK, _dump, _progress, _with_client, console
from .requests import _help, request_args

#: Commands that act on one agent, or on every agent their filters select (``bulk``) when given filters.
BULK_COMMANDS = ("archive", "abort", "destroy")
_FILTERS = ("status", "project", "environment", "older_than", "title", "agents")


def _bulk_wanted(args: argparse.Namespace) -> bool:
    """``palot agents archive --status completed``: filters instead of one agent (both is a mistake)."""
    filtered = [f"--{f.replace('_', '-')}" for f in _FILTERS if getattr(args, f, None)]
    if args.agent and filtered:
        raise InvalidInput(f"give one agent or filters ({', '.join(filtered)}), not both",
                           f"`palot agents {args.action} AGENT`, or `palot agents {args.action} --status …` for many")
    if args.agent and getattr(args, "dry_run", None):  # never do for real what was asked as a rehearsal
        raise InvalidInput("--dry-run goes with filters, not with one agent given as AGENT",
                           f"to see the plan for one agent: `palot agents {args.action} --only {args.agent} --dry-run`")
    if not args.agent and not filtered:
        raise InvalidInput(f"say which agent to {args.action}",
                           f"give its id, or filters for many: `palot agents {args.action} --status completed "
                           "--project P` (--env, --older-than 7d, --title …)")
    return not args.agent


def cmd_bulk(args: argparse.Namespace) -> int:
    """A bulk action: the plan first (a dry run), then — confirmed, or with --yes — the plan carried out."""
    request = request_args("bulk", args)
    operation = request["operation"]

    async def run(client: PalotClient) -> tuple[api.BulkResult, api.BulkResult | None]:
        plan: api.BulkResult = await client.call("bulk", {**request, "dry_run": True})
        todo = [i.agent_id for i in plan.items if i.outcome == "would"]
        if args.dry_run or not todo:
            return plan, None
        if not args.yes:
            if args.json or not sys.stdin.isatty():
                return plan, None
            _print_bulk(plan)
            noun = f"{len(todo)} agent{'s' if len(todo) != 1 else ''}"
            answer = console.input(Text(f"{operation.capitalize()} these {noun}? [y/N] "))  # [y/N] is not markup
            if answer.strip().lower() not in ("y", "yes"):
                return plan, api.BulkResult(operation=operation, dry_run=True, items=[])
        done = await client.call("bulk", {**request, "agents": todo, "dry_run": False}, progress=_progress(args))
        return plan, done

    plan, done = asyncio.run(_with_client(args, run))
    if args.json:
        _dump(done or plan)
        return EXIT_OK
    if done is None:
        _print_bulk(plan)
        if any(i.outcome == "would" for i in plan.items) and not args.dry_run:
            console.print(Text(f"nothing was done: run it again with --yes to {operation} them "
                               "(or answer the question in a terminal)"), soft_wrap=True)
        elif args.dry_run:
            console.print(Text("dry run: nothing was done"))
        return EXIT_OK
    if not done.items:
        console.print(Text("nothing was done"))
        return EXIT_OK
    _print_bulk(done)
    return EXIT_FAILED if done.count("failed") else EXIT_OK


def _print_bulk(result: api.BulkResult) -> None:
    for item in result.items:
        console.print(render.bulk_line(item), soft_wrap=True)
    console.print(render.bulk_summary(result), soft_wrap=True)


def _add_bulk_options(parser: argparse.ArgumentParser) -> None:
    """The filters of a bulk action, and how it is confirmed."""
    parser.add_argument("--status", action="append", choices=[s.value for s in api.AgentStatus],
                        help="only agents in this status (repeat)")
    parser.add_argument("--project", help=_help(api.BulkRequest, "project"))
    parser.add_argument("--env", "--environment", dest="environment", choices=api.TARGET_TYPES,
                        help=_help(api.BulkRequest, "environment"))
    parser.add_argument("--older-than", metavar="AGE", help=_help(api.BulkRequest, "older_than"))
    parser.add_argument("--title", help=_help(api.BulkRequest, "title"))
    parser.add_argument("--only", dest="agents", action="append", metavar="AGENT",
                        help="only this agent (an id; repeat), within the other filters")
    parser.add_argument("--dry-run", action="store_true", default=None, help="only list what would happen")
    parser.add_argument("--yes", "-y", action="store_true", help="do it without asking (scripts)")
