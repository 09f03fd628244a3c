"""What every command of the ``palot`` command line shares: the consoles, the exit codes, ``--json`` output,
progress on stderr, and a client of the service for one command."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from rich.console import RenderableType
from rich.text import Text

from .. import render
from ..client import PalotClient

T = TypeVar("T")

# Strings print as written (agent titles, paths and errors may contain "[/x]"); style goes in ``Text``.
console = render.console()
err_console = render.console(stderr=True)

#: Exit codes (README: "Exit codes"). 2 is any error Palot refused or could not carry out (see ``main``).
EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_STILL_RUNNING, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 70, 130


def _dump(value: Any) -> None:
    def default(o: Any) -> Any:
        if hasattr(o, "model_dump"):
            return o.model_dump(mode="json")
        raise TypeError(type(o).__name__)

    print(json.dumps(value, default=default, indent=2))


def _progress(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress lines go to stderr (stdout stays the answer); none with --json."""
    if getattr(args, "json", False):
        return lambda _m: None
    return lambda m: err_console.print(Text(m, "bright_black"), soft_wrap=True)


async def _with_client(args: argparse.Namespace, fn: Callable[[PalotClient], Awaitable[Any]], *,
                       autostart: bool = True) -> Any:
    async with PalotClient(autostart=autostart, progress=_progress(args)) as client:
        return await fn(client)


def _print_each(items: Sequence[T], line: Callable[[T], RenderableType], empty: str) -> None:
    """One line per item; ``empty`` (what to do about it) when there is none."""
    for item in items:
        console.print(line(item))
    if not items:
        console.print(empty)
