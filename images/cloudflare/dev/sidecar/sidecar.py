#!/usr/bin/env python3
"""Palot's local stand-in for the networking sidecar of Cloudflare Containers under `wrangler dev`.

workerd (wrangler 4.86) runs its "egress interceptor" image next to each app container, and the app
container joins the sidecar's network namespace. The real image (cloudflare/proxy-everything) is on
Docker Hub; machines without it get this one through MINIFLARE_CONTAINER_EGRESS_IMAGE.

What workerd asks of it, on --http-ingress-address (0.0.0.0:39001):
- ``PUT /egress`` (JSON egress settings, among them ``"internet": {"enabled": bool}``): with the internet
  off, the shared namespace's OUTPUT chain lets only loopback traffic and replies to connections made to
  the namespace (workerd's own, to this sidecar) through; every new connection to any other address,
  the host and Docker's bridge included, is rejected (iptables and ip6tables; workerd gives the sidecar
  NET_ADMIN). With it on, the chain is emptied. When the rules cannot be set, the answer is ``500`` and
  workerd does not start the container: the setting is enforced or nothing runs. Only workerd may change
  it: a request from inside the namespace (the app container shares it) is refused;
- ``GET /ca``: a placeholder text (there is no TLS interception, so no CA to trust);
- ``CONNECT`` with ``X-Dst-Addr: 127.0.0.1:<port>``: a byte tunnel to that port of the shared
  namespace, i.e. the app container's server; ``400`` when nothing listens there.
  Only loopback destinations are tunnelled: the sidecar is reachable from Docker's bridge and must
  not be an open proxy.

Stdlib and the iptables binaries; it logs no headers and no bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import subprocess
import sys

CA_PLACEHOLDER = b"# palot local-dev sidecar: no TLS interception, so no certificate\n"
MAX_HEAD = 64 * 1024


def _response(status: str, body: bytes = b"") -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


# The OUTPUT chain with the internet off: loopback, and replies on connections made to this namespace.
OFFLINE_RULES = (
    ("-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT"),
    ("-A", "OUTPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"),
    ("-A", "OUTPUT", "-j", "REJECT"),
)


def _internet_setting(body: bytes) -> bool | None:
    """``internet.enabled`` wherever it is in workerd's egress settings; None when they do not say."""
    try:
        pending = [json.loads(body or b"null")]
    except ValueError:
        return None
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            internet = item.get("internet")
            if isinstance(internet, dict) and isinstance(internet.get("enabled"), bool):
                return internet["enabled"]
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def _set_internet(enabled: bool) -> str | None:
    """Apply the setting to the namespace's OUTPUT chain; the error, when it could not be."""
    for tool in ("iptables", "ip6tables"):
        for rule in (("-F", "OUTPUT"), *(() if enabled else OFFLINE_RULES)):
            try:
                done = subprocess.run([tool, "-w", *rule], capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"{tool}: {exc}"
            if done.returncode != 0:
                return f"{tool} {' '.join(rule)}: {done.stderr.strip()[-300:]}"
    return None


def _from_inside(writer: asyncio.StreamWriter) -> bool:
    """A connection made from this namespace (so possibly from the app container), not by workerd."""
    peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
    try:
        return ipaddress.ip_address(peer[0]).is_loopback or peer[0] == local[0]
    except (TypeError, ValueError, IndexError):
        return True


def _loopback(address: str) -> tuple[str, int] | None:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        ip = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
        number = int(port)
    except ValueError:
        return None
    return (str(ip), number) if ip.is_loopback and 0 < number < 65536 else None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """The request body (content-length or chunked), read whole so the reply is well-formed."""
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            body += (await reader.readexactly(size + 2))[:size]  # the chunk and its CRLF (the last one ends it)
            if size == 0:
                break
    return body


def _egress(body: bytes, inside: bool) -> bytes:
    if inside:
        return _response("403 Forbidden", b"egress settings come from workerd, not from the container\n")
    enabled = _internet_setting(body)
    if enabled is not None:
        failed = _set_internet(enabled)
        # The internet on is the namespace's default: a chain that cannot be emptied was never filled.
        if failed and not enabled:
            return _response("500 Internal Server Error", f"cannot apply enableInternet=false: {failed}\n".encode())
        print(f"palot sidecar: internet {'on' if enabled else 'off'}", file=sys.stderr, flush=True)
    return _response("204 No Content")


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = (await reader.readuntil(b"\r\n\r\n"))[:MAX_HEAD].decode("latin-1")
        request_line, *lines = head.split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if method == "CONNECT":
            await _tunnel(reader, writer, headers.get("x-dst-addr", target))
            return
        body = await _read_body(reader, headers)
        if method == "PUT" and target == "/egress":
            writer.write(_egress(body, _from_inside(writer)))
        elif method == "GET" and target == "/ca":
            writer.write(_response("200 OK", CA_PLACEHOLDER))
        else:
            writer.write(_response("404 Not Found"))
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, destination: str) -> None:
    address = _loopback(destination)
    if address is None:
        writer.write(_response("403 Forbidden"))
        await writer.drain()
        return
    try:
        up_reader, up_writer = await asyncio.open_connection(*address)
    except OSError:
        writer.write(_response("400 Bad Request"))  # what workerd reads as "not listening yet"
        await writer.drain()
        return
    writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
    await writer.drain()
    try:
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    finally:
        up_writer.close()


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-ingress-address", default="0.0.0.0:39001")
    args, _ = parser.parse_known_args(argv)  # egress port, gateway CIDR, DNS/TLS flags: unused here
    host, _, port = args.http_ingress_address.rpartition(":")
    server = await asyncio.start_server(_handle, host or "0.0.0.0", int(port))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
