"""Where the Palot service listens and who may connect: the unix socket in ``PALOT_HOME`` (mode 0600, a
connection from another uid closed before it is read) and the optional loopback TCP listener (its requests
carry the token, checked by :mod:`.run`)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import struct
from pathlib import Path

from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import InvalidInput

log = logging.getLogger("palot.service")


class PeerCheckedH11(H11Protocol):
    """HTTP on the unix socket, for this user only: a connection from another uid is closed at once."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family == socket.AF_UNIX:
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _pid, uid, _gid = struct.unpack("3i", creds)
            if uid != os.getuid():
                log.warning("refused a connection from uid %d (the service serves uid %d only)", uid, os.getuid())
                transport.abort()
                return
        super().connection_made(transport)


def bind_unix(path: Path) -> socket.socket:
    """The service's unix socket at ``path``, mode 0600 in a 0700 directory, listening."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a dead service's socket: we hold the lock, so nobody else serves this home
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(256)
    sock.setblocking(False)
    return sock


def bind_tcp(address: str) -> tuple[socket.socket, str]:
    """The optional TCP listener on ``address`` (``HOST:PORT``, loopback only), and the address it is bound to."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:  # the token is sent in clear: never offer the API beyond this machine
        raise InvalidInput(f"the TCP listener is for loopback only, not {host}",
                           "use --tcp 127.0.0.1:PORT (reach it from another machine through an SSH tunnel)")
    try:
        number = int(port)
    except ValueError:
        raise InvalidInput(f"'{address}' is not HOST:PORT", "e.g. --tcp 127.0.0.1:7391 (or --tcp 7391)") from None
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, number))
    except OSError as e:
        raise InvalidInput(f"cannot listen on {host}:{number} ({e.strerror})", "choose another port") from None
    sock.listen(64)
    sock.setblocking(False)
    bound = sock.getsockname()
    return sock, f"{bound[0]}:{bound[1]}"
