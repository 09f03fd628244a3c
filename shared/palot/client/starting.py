"""Starting the Palot service for a client: the background process, whether one is alive, and what its log
says while it comes up (shown as progress) or why it failed."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..endpoint import Endpoint

START_TIMEOUT = 180.0  # the first start may install OpenCode


def launch(home: Path) -> subprocess.Popen[bytes]:
    """Start the service of ``home`` in the background (it detaches; its exit code says whether it started)."""
    env = {**os.environ, "PALOT_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "palot.service", "--same-as-before", "--background"], env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)


def service_alive(endpoint: Endpoint) -> bool:
    """Whether a service process of this home is alive (it holds ``service/lock`` for its whole life,
    including while it stops after its socket has closed)."""
    try:
        lock = open(endpoint.lock_file, "a")  # noqa: SIM115 - closed below
    except OSError:
        return False
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False


def relay_log(endpoint: Endpoint, seen: int, progress: Callable[[str], None]) -> int:
    """Show the service's start-up lines (e.g. OpenCode being installed) as progress; the log's new end."""
    try:
        with open(endpoint.log_file, "rb") as fh:
            fh.seek(seen)
            chunk = fh.read()
    except OSError:
        return seen
    for line in chunk.decode(errors="replace").splitlines():
        text = line.split(": ", 1)[-1].strip()
        if text and " INFO " in line:
            progress(text)
    return seen + len(chunk)


def last_error(endpoint: Endpoint, stderr: str) -> str:
    """Why the service did not start: the last line it wrote to stderr, else the last error of its log."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        with contextlib.suppress(OSError):
            lines = [ln for ln in endpoint.log_file.read_text().splitlines() if " ERROR " in ln]
    if not lines:
        return "no reason was logged"
    text = lines[-1].split(": ", 1)[-1]
    return text.removeprefix("the Palot service could not start: ")
