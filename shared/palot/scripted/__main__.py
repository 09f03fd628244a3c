"""``python -m palot.scripted --script FILE|demo --port N`` — run a scripted model server."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from . import DEMO_SCRIPT
from .models import Script, ScriptError
from .server import ScriptedModelServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m palot.scripted",
        description="Serve a deterministic OpenAI-compatible model that replays a script.",
    )
    p.add_argument("--script", default="demo", help="script JSON file, or 'demo' for the embedded demo (default)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    p.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = _parser().parse_args(argv)
    prog = "palot-scripted"
    try:
        script = DEMO_SCRIPT if args.script == "demo" else Script.load(args.script)
    except ScriptError as exc:
        print(f"{prog}: error: bad script {exc}", file=sys.stderr)
        return 2
    server = ScriptedModelServer(script, host=args.host, port=args.port, api_key=args.api_key)
    try:
        server.start()
    except OSError as exc:
        print(f"{prog}: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    done = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    print(f"{prog} listening on {server.base_url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
