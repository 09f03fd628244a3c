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
import tomllib
from pathlib import Path

from ..errors import CloudDeployFailed, ToolInstallFailed, ToolMissing
from ..images import build_agent_image
from ..install import Progress, quiet
from ..paths import PalotPaths, cache_dir
from . import config as cloud_config

_URL = re.compile(r"https://[A-Za-z0-9.-]+\.workers\.dev\b")


def worker_dir() -> Path:
    """``images/cloudflare`` of this source tree: the Worker, its wrangler.toml and package-lock.json."""
    return Path(__file__).resolve().parents[3] / "images" / "cloudflare"


def ensure_node_modules(progress: Progress = quiet) -> Path:
    """Install the Worker's pinned npm packages (wrangler, @cloudflare/containers) when missing or stale."""
    directory = worker_dir()
    modules, lock = directory / "node_modules", directory / "package-lock.json"
    marker = modules / ".package-lock.json"  # npm rewrites it on every install
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return modules
    progress("installing the Worker's npm packages (npm ci)")
    try:
        out = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=directory, capture_output=True,
                             text=True, timeout=600, stdin=subprocess.DEVNULL)
    except FileNotFoundError as e:
        raise ToolMissing("npm is not installed, and the cloud Worker needs it (wrangler is an npm package)",
                          "install Node.js 20 or newer with npm (`apt-get install nodejs npm`)") from e
    if out.returncode != 0:
        raise ToolInstallFailed(f"`npm ci` failed in {directory}: {(out.stderr or out.stdout).strip()[-800:]}",
                                "check that the npm registry is reachable (or npm's proxy settings), then try again")
    return modules


def _wrangler(args: list[str], *, stdin: str | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WRANGLER_SEND_METRICS": "false", "CI": "1", "NO_COLOR": "1"}
    return subprocess.run([str(worker_dir() / "node_modules" / ".bin" / "wrangler"), *args], cwd=worker_dir(),
                          env=env, input=stdin or "", capture_output=True, text=True, timeout=timeout)


def _last_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (out.stdout + "\n" + out.stderr).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {out.returncode}"


def _ensure_saves_bucket(progress: Progress) -> None:
    """Create the R2 bucket wrangler.toml binds as SAVES (environments' saved work), unless it exists."""
    config = tomllib.loads((worker_dir() / "wrangler.toml").read_text(encoding="utf-8"))
    bucket = next(b["bucket_name"] for b in config["r2_buckets"] if b["binding"] == "SAVES")
    progress(f"making sure the R2 bucket {bucket} (saved work of environments) exists")
    out = _wrangler(["r2", "bucket", "create", bucket], timeout=300)
    if out.returncode != 0 and "already exists" not in (out.stdout + out.stderr).lower():
        raise CloudDeployFailed(f"wrangler r2 bucket create {bucket} failed: {_last_line(out)}",
                                "enable R2 for your Cloudflare account (dashboard → R2), then retry")


def deploy(paths: PalotPaths, *, progress: Progress = quiet) -> cloud_config.CloudConfig:
    """Build the agent image, ``wrangler deploy`` the Worker and its container, set its token, save both."""
    if shutil.which("npm") is None:
        raise ToolMissing("npm (Node.js) is not installed", "install Node.js 20.3 or newer with npm, then retry")
    ensure_node_modules(progress)
    who = _wrangler(["whoami"], timeout=120)
    if who.returncode != 0 or "not authenticated" in who.stdout.lower():
        raise CloudDeployFailed(f"wrangler is not logged in to Cloudflare, or Cloudflare is unreachable ({_last_line(who)})",
                                "run `npx wrangler login` in images/cloudflare (or set CLOUDFLARE_API_TOKEN), then retry")
    progress("building the agent image the Worker's container starts from")
    build_agent_image(paths, cache=cache_dir(), progress=progress)
    _ensure_saves_bucket(progress)
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
