"""Where Palot's Worker is and how to authenticate to it.

The URL is plain; the bearer token is encrypted at rest (Fernet, with a key file of its own, both mode
0600), so neither the store, the logs nor a copied ``cloud.json`` holds it in clear.
``PALOT_CLOUD_URL`` and ``PALOT_CLOUD_TOKEN`` override the saved values (CI, scripts).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..errors import CloudNotConfigured, InvalidInput, PalotError  # noqa: F401 - re-exported
from ..paths import PalotPaths, write_private


@dataclass(frozen=True)
class CloudConfig:
    url: str
    token: str

    def __repr__(self) -> str:  # never print the token
        return f"CloudConfig(url={self.url!r}, token=<hidden>)"


def _config_file(paths: PalotPaths) -> Path:
    return paths.home / "cloud.json"


def _key_file(paths: PalotPaths) -> Path:
    return paths.home / "keys" / "cloud.key"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, data)


def _fernet(paths: PalotPaths, *, create: bool):  # -> cryptography.fernet.Fernet
    from cryptography.fernet import Fernet

    key_file = _key_file(paths)
    if not key_file.exists():
        if not create:
            raise CloudNotConfigured("the cloud token's key is missing", "run `palot cloud connect` again")
        _write_private(key_file, Fernet.generate_key())
    return Fernet(key_file.read_bytes())


def check_url(url: str) -> str:
    """A Worker URL: http(s), with a host; trailing slashes dropped."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInput(f"'{url}' is not a Worker URL", "give the https://… address `wrangler deploy` printed")
    return url.rstrip("/")


def save(paths: PalotPaths, url: str, token: str) -> CloudConfig:
    """Remember the Worker; the token is stored encrypted."""
    url = check_url(url)
    if not token or any(c.isspace() for c in token):
        raise InvalidInput("the Worker token is empty or contains spaces", "pass the token the Worker was deployed with")
    secret = _fernet(paths, create=True).encrypt(token.encode()).decode()
    _write_private(_config_file(paths), json.dumps({"url": url, "token_encrypted": secret}).encode())
    return CloudConfig(url, token)


def load(paths: PalotPaths) -> CloudConfig:
    """The Worker to use: the environment's PALOT_CLOUD_URL/TOKEN, else the saved one."""
    url, token = os.environ.get("PALOT_CLOUD_URL"), os.environ.get("PALOT_CLOUD_TOKEN")
    if url and token:
        return CloudConfig(check_url(url), token)
    path = _config_file(paths)
    if not path.exists():
        raise CloudNotConfigured("the cloud tier is not set up",
                                 "run `palot cloud deploy` (your wrangler login) or `palot cloud connect URL`")
    from cryptography.fernet import InvalidToken

    try:
        stamp = _stamp(path, _key_file(paths))
        cached = _loaded.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        data = json.loads(path.read_text())
        token = _fernet(paths, create=False).decrypt(data["token_encrypted"].encode()).decode()
        config = CloudConfig(str(data["url"]), token)
        _loaded[path] = (stamp, config)
        return config
    except InvalidToken:
        raise CloudNotConfigured("the saved cloud token cannot be decrypted (its key changed)",
                                 "run `palot cloud connect URL` again with the Worker's token") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CloudNotConfigured(f"the saved cloud settings in {path} cannot be read ({type(e).__name__})",
                                 "run `palot cloud connect URL` again with the Worker's token") from None


#: The decrypted config per file, with the stamp of the files it was read from: decrypted again only when
#: ``cloud.json`` or its key changes (``save`` and ``forget`` change them, so does another process).
_loaded: dict[Path, tuple[tuple[int, ...], CloudConfig]] = {}


def _stamp(*files: Path) -> tuple[int, ...]:
    stamp: list[int] = []
    for f in files:
        try:
            st = f.stat()
            stamp += [st.st_ino, st.st_mtime_ns, st.st_size]
        except FileNotFoundError:  # a missing key is said by the decryption that follows
            stamp += [-1, -1, -1]
    return tuple(stamp)


def forget(paths: PalotPaths) -> None:
    _config_file(paths).unlink(missing_ok=True)
