"""Test scaffolding: an agent image that carries Palot's scripted model, for rehearsing the cloud tier offline.

Container environments get the scripted model by mounting Palot's code; a cloud container cannot mount
anything, so the rehearsal image bakes in the ``palot`` package, the installed packages importing the
scripted model loads, and the script. Used by ``wrangler dev`` runs (tests, benchmarks), never by a deployed Worker.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path
from typing import Any

from palot.images import AGENT_IMAGE



def _packages(site: Path) -> list[str]:
    """The installed packages ``import palot.scripted`` loads here (the image needs exactly those)."""
    import sys

    import palot.scripted  # noqa: F401

    tops = set()
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(site):
            top = Path(file).resolve().relative_to(site).parts[0]
            if not top.startswith("_"):  # import hooks of the virtualenv, not packages
                tops.add(top)
    return sorted(tops)


def _context(script: Path | None) -> bytes:
    import pydantic

    import palot

    palot_dir = Path(palot.__file__).resolve().parent
    site = Path(pydantic.__file__).resolve().parents[1]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def skip_cache(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            return None if "__pycache__" in info.name else info

        tar.add(palot_dir, "src/palot", filter=skip_cache)
        for name in _packages(site):
            tar.add(site / name, f"site/{name}", filter=skip_cache)
        copy_script = ""
        if script is not None:
            tar.add(script, "script.json")
            copy_script = "COPY script.json /opt/palot/script.json\n"
        # The daemon's port is set where every Worker image gets it (LocalWorker's Dockerfile, images/cloudflare).
        dockerfile = f"FROM {AGENT_IMAGE}\nCOPY src /opt/palot/src\nCOPY site /opt/palot/site\n{copy_script}".encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    return buf.getvalue()


def build_rehearsal_image(client: Any, script: Path | None = None) -> str:
    """Build (once per content) the rehearsal image from the agent image; returns its tag."""
    context = _context(script)
    base = client.images.get(AGENT_IMAGE).id  # a rebuilt agent image makes a new rehearsal image
    tag = f"palot-cloud-rehearsal:{hashlib.sha256(context + base.encode()).hexdigest()[:12]}"
    try:
        client.images.get(tag)
    except Exception:
        client.images.build(fileobj=io.BytesIO(context), custom_context=True, tag=tag, rm=True)
    return tag
