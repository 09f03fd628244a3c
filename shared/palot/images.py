"""The agent image: checking for it and building it, with or without an image registry.

With a registry, ``docker build -t palot-agent images/agent`` is all it takes.
Machines without one get the same image built from a local base: a Debian
bookworm root filesystem made with ``mmdebstrap`` (cached as a tarball) and
imported, plus the pinned OpenCode binary Palot already installed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import EngineUnavailable, ImageBuildFailed, ImageMissing, PalotError, ToolMissing  # noqa: F401 - re-exported
from .install import OPENCODE_VERSION, Progress, quiet, require_opencode
from .paths import PalotPaths

AGENT_IMAGE = f"palot-agent:{OPENCODE_VERSION}"
BASE_IMAGE = "localhost/palot-agent-base:bookworm"
BASE_PACKAGES = "python3,git,ca-certificates,nodejs,ripgrep,bash,procps"


def image_dir() -> Path:
    """``images/agent`` of this source tree."""
    return Path(__file__).resolve().parents[2] / "images" / "agent"


def engine(timeout: int = 60) -> Any:
    """A Docker SDK client for ``$DOCKER_HOST`` (Docker, or Podman's Docker-compatible socket)."""
    import docker  # imported here: only the container tier needs it

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as e:  # the SDK raises several unrelated types for "not there"
        raise EngineUnavailable(
            f"no container engine is reachable ({type(e).__name__}: {str(e)[:200]})",
            "start Docker (`sudo systemctl start docker`, or `dockerd &`), or point DOCKER_HOST at a running "
            "engine (Podman: `podman system service` and DOCKER_HOST=unix:///run/podman/podman.sock)",
        ) from e


def _context_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for name in ("Dockerfile", "palot-envd.py"):
        digest.update((directory / name).read_bytes())
    digest.update(OPENCODE_VERSION.encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ImageStatus:
    image: str
    present: bool
    current: bool  # built from this source tree's Dockerfile and daemon
    base_present: bool


def image_status(client: Any | None = None) -> ImageStatus:
    import docker.errors

    client = client or engine()
    want = _context_digest(image_dir())
    try:
        try:
            labels = client.images.get(AGENT_IMAGE).labels or {}
            present, current = True, labels.get("palot.context") == want
        except docker.errors.ImageNotFound:
            present = current = False
        try:
            client.images.get(BASE_IMAGE)
            base = True
        except docker.errors.ImageNotFound:
            base = False
    except docker.errors.DockerException as e:  # the engine went away, or refused: never the SDK's error
        raise EngineUnavailable(f"the container engine did not answer about the agent image: {str(e)[:300]}",
                                "check that Docker is running (`docker info`), then try again") from e
    return ImageStatus(AGENT_IMAGE, present, current, base)


def require_image(client: Any) -> None:
    """Raise a clear error when the agent image is missing."""
    if not image_status(client).present:
        raise ImageMissing(f"the agent image {AGENT_IMAGE} is not built",
                           "run `palot images build` (works offline), or `docker build -t "
                           f"{AGENT_IMAGE} images/agent` with a registry")


def _base_tarball(cache: Path, progress: Progress) -> Path:
    tarball = cache / "palot-agent-base-bookworm.tar"
    if tarball.exists():
        return tarball
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise ToolMissing("mmdebstrap is needed to build the base image without a registry",
                          "install it (`apt-get install mmdebstrap`), or build with a registry: "
                          "`docker build -t palot-agent images/agent`")
    cache.mkdir(parents=True, exist_ok=True)
    progress(f"making a Debian bookworm root filesystem with mmdebstrap (about 30 s) → {tarball}")
    partial = tarball.with_suffix(".partial")
    out = subprocess.run([mmdebstrap, "--variant=minbase", "--format=tar", f"--include={BASE_PACKAGES}", "bookworm",
                          str(partial)],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1800)
    if out.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ImageBuildFailed(f"mmdebstrap failed: {out.stderr.strip()[-600:]}",
                               "check that Debian's package mirror is reachable, then try again")
    partial.rename(tarball)
    return tarball


def build_agent_image(paths: PalotPaths, *, cache: Path, progress: Progress = quiet,
                      client: Any | None = None) -> str:
    """Build the agent image offline (idempotent: a current image is kept)."""
    client = client or engine(timeout=600)
    status = image_status(client)
    if status.current:
        return AGENT_IMAGE
    if not status.base_present:
        tarball = _base_tarball(cache, progress)
        progress(f"importing {tarball.name} as {BASE_IMAGE}")
        repo, tag = BASE_IMAGE.rsplit(":", 1)
        with open(tarball, "rb") as data:  # streamed to the engine (a path would be taken for a URL)
            client.api.import_image(src=data, repository=repo, tag=tag)
    binary = require_opencode(paths)
    with tempfile.TemporaryDirectory(prefix="palot-image-") as tmp:
        context = Path(tmp)
        for name in ("Dockerfile", "palot-envd.py"):
            shutil.copy2(image_dir() / name, context / name)
        (context / "opencode-bin").mkdir()
        shutil.copy2(binary.resolve(), context / "opencode-bin" / "opencode")
        progress(f"building {AGENT_IMAGE}")
        client.images.build(
            path=str(context), tag=AGENT_IMAGE, rm=True, pull=False,
            buildargs={"BASE": BASE_IMAGE, "INSTALL_PACKAGES": "0", "OPENCODE_VERSION": OPENCODE_VERSION},
            labels={"palot.context": _context_digest(image_dir())},
        )
    return AGENT_IMAGE
