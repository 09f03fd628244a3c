"""``palot cloud deploy``: publish Palot's Worker with the user's own wrangler login, then remember it.

A fresh token is generated for every deploy and set as the Worker's ``PALOT_TOKEN`` secret (through
wrangler's stdin, never a command line); Palot keeps it encrypted (:mod:`.config`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess

from ..errors import CloudDeployFailed, ToolMissing
from ..images import build_agent_image
from ..install import Progress, quiet
from ..paths import PalotPaths, cache_dir
from . import config as cloud_config

_URL = re.compile(r"https://[A-Za-z0-9.-]+\.workers\.dev\b")


def _wrangler(args: list[str], *, stdin: str | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    from .localdev import worker_dir

    env = {**os.environ, "WRANGLER_SEND_METRICS": "false", "CI": "1", "NO_COLOR": "1"}
    return subprocess.run([str(worker_dir() / "node_modules" / ".bin" / "wrangler"), *args], cwd=worker_dir(),
                          env=env, input=stdin or "", capture_output=True, text=True, timeout=timeout)


def _last_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (out.stdout + "\n" + out.stderr).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {out.returncode}"


def deploy(paths: PalotPaths, *, progress: Progress = quiet) -> cloud_config.CloudConfig:
    """Build the agent image, ``wrangler deploy`` the Worker and its container, set its token, save both."""
    from .localdev import ensure_node_modules

    if shutil.which("npm") is None:
        raise ToolMissing("npm (Node.js) is not installed", "install Node.js 20.3 or newer with npm, then retry")
    ensure_node_modules(progress)
    who = _wrangler(["whoami"], timeout=120)
    if who.returncode != 0 or "not authenticated" in who.stdout.lower():
        raise CloudDeployFailed(f"wrangler is not logged in to Cloudflare, or Cloudflare is unreachable ({_last_line(who)})",
                                "run `npx wrangler login` in images/cloudflare (or set CLOUDFLARE_API_TOKEN), then retry")
    progress("building the agent image the Worker's container starts from")
    build_agent_image(paths, cache=cache_dir(), progress=progress)
    progress("deploying the Worker and its container image (wrangler deploy)")
    out = _wrangler(["deploy"])
    if out.returncode != 0:
        raise CloudDeployFailed(f"wrangler deploy failed: {(out.stderr or out.stdout).strip()[-1500:]}",
                                "fix what wrangler reports (Workers Paid plan and Containers access are required)")
    match = _URL.search(out.stdout + out.stderr)
    if match is None:
        raise CloudDeployFailed("wrangler deploy did not print the Worker's workers.dev URL",
                                "find it in the Cloudflare dashboard, then `palot cloud connect URL --token …`")
    token = secrets.token_urlsafe(32)
    progress("setting the Worker's PALOT_TOKEN secret")
    put = _wrangler(["secret", "put", "PALOT_TOKEN"], stdin=token + "\n", timeout=300)
    if put.returncode != 0:
        raise CloudDeployFailed(f"wrangler secret put failed: {(put.stderr or put.stdout).strip()[-800:]}",
                                "run `palot cloud deploy` again")
    return cloud_config.save(paths, match.group(0), token)
