"""``palot inbox``: every permission request waiting for a person, oldest first; ``palot inbox reply`` answers
many at once."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.text import Text

from .. import api, render
from .common import EXIT_OK, _dump, _with_client, console
from .requests import _help, request_args


def cmd_inbox(args: argparse.Namespace) -> int:
    """``palot inbox``: every pending permission request, oldest first; ``palot inbox reply``: answer many."""
    action = "inbox_reply" if args.inbox_action == "reply" else "inbox"
    items = asyncio.run(_with_client(args, lambda c: c.call(action, request_args(action, args))))
    if args.json:
        _dump(items)
    elif action == "inbox":
        if items:
            console.print(render.inbox_table(items), soft_wrap=True, end="")
        else:
            console.print("Nothing is waiting for you.")
    elif items:
        console.print(Text(f"answered {len(items)} request{'s' if len(items) != 1 else ''} with {args.reply}:"))
        for item in items:
            console.print(render.inbox_line(item), soft_wrap=True)
    else:
        console.print("no pending request matched: nothing was answered (see `palot inbox`)")
    return EXIT_OK


def _add_inbox_commands(sub: Any) -> argparse.ArgumentParser:
    ib = sub.add_parser("inbox", help="every permission request waiting for you, oldest first; "
                                      "`palot inbox reply` answers many at once")
    ib.add_argument("--project", help=_help(api.InboxRequest, "project"))
    isub = ib.add_subparsers(dest="inbox_action", required=False)
    rp = isub.add_parser("reply", help="answer many pending permission requests at once",
                         description="Answer the requests named by id, and/or every request of one agent "
                                     "(--all-from) or for one tool (--tool), within --project.")
    rp.add_argument("reply", choices=api.REPLIES)
    rp.add_argument("permission_ids", nargs="*", metavar="ID", help="these requests (ids from `palot inbox`)")
    rp.add_argument("--all-from", "--agent", dest="agent", metavar="AGENT",
                    help=_help(api.InboxReplyRequest, "agent"))
    rp.add_argument("--tool", help=_help(api.InboxReplyRequest, "tool"))
    # SUPPRESS: `palot inbox --project P reply …` keeps the P given before `reply`
    rp.add_argument("--project", default=argparse.SUPPRESS, help=_help(api.InboxReplyRequest, "project"))
    rp.add_argument("--message", help=_help(api.InboxReplyRequest, "message"))
    rp.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    ib.set_defaults(func=cmd_inbox)
    return ib
