"""``palot-lsp``: the Palot language server, on stdio (what editors start) or TCP."""

from __future__ import annotations

import argparse
import logging
import sys

from pygls.exceptions import JsonRpcException

from .server import create_server


class _AnsweredErrors(logging.Filter):
    """Drop pygls' tracebacks for errors the client got as a proper answer (bad params, Palot errors)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], JsonRpcException))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="palot-lsp",
        description="Palot's language server: agents' changes, commands and code actions in your editor. "
                    "A client of the Palot service of $PALOT_HOME (or the default data dir), started if none runs.")
    parser.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")
    parser.add_argument("--tcp", action="store_true", help="listen on TCP instead (for debugging)")
    parser.add_argument("--host", default="127.0.0.1", help="TCP host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2087, help="TCP port (default 2087)")
    parser.add_argument("--log-file", help="write the server's log here instead of stderr")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)

    # stdout carries the protocol: logs go to stderr or a file, never stdout.
    handler: logging.Handler = (logging.FileHandler(args.log_file) if args.log_file
                                else logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=args.log_level, handlers=[handler],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level != "DEBUG":
        logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs every message body at INFO
        logging.getLogger("pygls.protocol.json_rpc").addFilter(_AnsweredErrors())

    server = create_server()
    if args.tcp:
        server.start_tcp(args.host, args.port)
    else:
        server.start_io()
    return 0


if __name__ == "__main__":
    sys.exit(main())
