"""Processes on this machine: whether one runs, ending one (and its group), free loopback ports, waiting for one
to listen, and the directory a child Python imports Palot from."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from ..errors import ServerUnavailable


def free_port() -> int:
    """A currently free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int | None, *, must_contain: str | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, optionally, its command line contains a string."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        if must_contain is not None:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            return must_contain in cmdline
        return True
    except (OSError, IndexError):
        return False


async def end(pid: int) -> None:
    """:func:`terminate` off the event loop: it finishes (the process ends) even when the awaiting task is
    cancelled."""
    await asyncio.to_thread(terminate, pid)


def terminate(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM a process (its whole group when it leads one, e.g. the agent's bash children), then SIGKILL.
    Blocking (up to ``timeout``): async code awaits :func:`end`."""
    if not pid_alive(pid):
        return
    _signal_and_wait(pid, signal.SIGTERM, timeout)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def kill_now(pid: int, timeout: float = 5.0) -> None:
    """SIGKILL a process that cannot stop by itself (its whole group when it leads one: children holding its
    port go too), and wait up to ``timeout`` until it is gone. Blocking: run it in a thread."""
    _signal_and_wait(pid, signal.SIGKILL, timeout)


def _signal_and_wait(pid: int, sig: signal.Signals, timeout: float) -> None:
    """Send ``sig`` to the process (its group when it leads one) and wait up to ``timeout`` for it to end."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def package_root() -> Path:
    """The directory holding the ``palot`` package (a child Python, or a container, imports the same code)."""
    return Path(__file__).resolve().parents[2]


def child_pythonpath() -> str:
    """``PYTHONPATH`` for a child Python: :func:`package_root` first, then what this process was given."""
    root = str(package_root())
    existing = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{existing}" if existing else root


async def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    """Until the scripted model ``proc`` accepts connections on ``port`` (its log's tail in the error)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
    raise ServerUnavailable(
        f"the scripted model did not start on port {port}: {log_path.read_text(errors='replace')[-800:]}",
        f"see {log_path}",
    )
