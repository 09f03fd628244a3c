"""``palot service status|stop|restart|logs``: the Palot service of this ``PALOT_HOME``, without starting it
to look."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.text import Text

from .. import api, render
from ..client import PalotClient
from ..errors import ServiceLogMissing, ServiceUnavailable
from .common import EXIT_FAILED, EXIT_OK, _dump, _progress, console


async def service_status(client: PalotClient) -> api.ServiceStatus | None:
    """The service's status, or None when it is not running (never starting it)."""
    try:
        return await client.connect()
    except ServiceUnavailable:
        return None


def cmd_service(args: argparse.Namespace) -> int:
    if args.action == "logs":
        return _service_logs(args)

    async def run(client: PalotClient) -> Any:
        status = await service_status(client)
        if args.action == "status":
            return status
        if args.action in ("stop", "restart") and status is not None:
            await client.stop_service(stop_opencode=getattr(args, "opencode", False))
            await wait_gone(status.pid)  # it holds the home's lock until it exits
        if args.action == "stop":
            return status
        async with PalotClient(progress=_progress(args)) as fresh:  # restart: starts it with its options
            return await fresh.status()

    client = PalotClient(autostart=False, progress=_progress(args))
    socket = str(client.endpoint.socket)
    status = asyncio.run(_closing(client, run))
    if args.json:
        body: dict[str, Any] = {"running": status is not None and args.action != "stop", "socket": socket}
        if status is not None:
            body.update(status.model_dump(mode="json"))
        _dump(body)
    elif args.action == "stop":
        console.print(Text(f"stopped the Palot service (pid {status.pid})" if status
                           else "the Palot service was not running"))
    elif status is None:
        console.print(Text(f"the Palot service is not running (socket {socket}); any palot command starts it"),
                      soft_wrap=True)
    else:
        console.print(render.service_status(status, socket), soft_wrap=True)
    return EXIT_FAILED if args.action == "status" and status is None else EXIT_OK


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


async def wait_gone(pid: int, timeout: float = 30.0) -> bool:
    """Wait until ``pid`` has exited: the service answers no more before it has stopped its core."""
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def _closing(client: PalotClient, fn: Callable[[PalotClient], Awaitable[Any]]) -> Any:
    try:
        return await fn(client)
    finally:
        await client.close()


def _service_logs(args: argparse.Namespace) -> int:
    log_file = PalotClient(autostart=False).endpoint.log_file
    try:
        fh = open(log_file, "rb")  # noqa: SIM115 - followed below
    except FileNotFoundError:
        raise ServiceLogMissing(f"the Palot service has no log yet ({log_file})",
                                "start it with `palot up` (or any palot command)") from None
    with fh:
        lines = fh.read().decode(errors="replace").splitlines()
        for line in lines[-args.lines:] if args.lines > 0 else []:
            print(line)
        sys.stdout.flush()
        while args.follow:
            chunk = fh.read()
            if chunk:
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
                continue
            try:  # rotated (the log is a RotatingFileHandler): follow the new file
                if log_file.stat().st_ino != os.fstat(fh.fileno()).st_ino:
                    fh.close()
                    fh = open(log_file, "rb")  # noqa: SIM115
                    continue
            except FileNotFoundError:
                pass
            time.sleep(0.3)
    return EXIT_OK
