"""The service's command line: ``palot serve [--scripted SCRIPT] [--isolated] [--tcp [HOST:]PORT]``."""

from __future__ import annotations

import argparse
import os

from ..endpoint import Endpoint
from ..paths import PalotPaths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="palot serve", description=(
        "Run the Palot service of this PALOT_HOME in the foreground (for systemd or launchd). "
        "Clients start it in the background by themselves when it is not running."))
    parser.add_argument("--scripted", metavar="SCRIPT",
                        help="use Palot's scripted model (a script file, or 'demo') instead of your providers")
    parser.add_argument("--isolated", action="store_true",
                        help="run OpenCode with its own HOME and XDG dirs under PALOT_HOME, offline")
    parser.add_argument("--opencode-bin", metavar="PATH", help="the OpenCode binary (default: the pinned one)")
    parser.add_argument("--port", type=int, help="the OpenCode server's port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--tcp", metavar="[HOST:]PORT",
                        help="also listen on loopback TCP (token in PALOT_HOME/service/tcp-token); off by default")
    parser.add_argument("--same-as-before", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--background", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .run import ServeOptions, serve

    args = build_parser().parse_args(argv)
    paths = PalotPaths.default()
    if args.same_as_before:  # a client restarting the service: the options it ran with last time
        saved = (Endpoint(paths).read_state() or {}).get("options") or {}
        options = ServeOptions(**{k: v for k, v in saved.items() if k in ServeOptions.__dataclass_fields__})
    else:
        tcp = args.tcp
        if tcp and ":" not in tcp:
            tcp = f"127.0.0.1:{tcp}"
        options = ServeOptions(scripted=args.scripted, isolated=args.isolated, opencode_bin=args.opencode_bin,
                               tcp=tcp, port=args.port)
    if args.background:
        os.setsid() if os.getpid() != os.getsid(0) else None
    return serve(paths, options, foreground=not args.background)
