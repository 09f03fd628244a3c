#!/usr/bin/env python3
"""Palot's local stand-in for the networking sidecar of Cloudflare Containers under `wrangler dev`.

workerd (wrangler 4.86) runs its "egress interceptor" image next to each app container, and the app
container joins the sidecar's network namespace. The real image (cloudflare/proxy-everything) is on
Docker Hub; machines without it get this one through MINIFLARE_CONTAINER_EGRESS_IMAGE.

What workerd asks of it, on --http-ingress-address (0.0.0.0:39001):
- ``PUT /egress`` (JSON egress settings): acknowledged, not enforced. So locally ``enableInternet``
  does NOT cut a container off: its traffic goes out through Docker's bridge as usual;
- ``GET /ca``: a placeholder text (there is no TLS interception, so no CA to trust);
- ``CONNECT`` with ``X-Dst-Addr: 127.0.0.1:<port>``: a byte tunnel to that port of the shared
  namespace, i.e. the app container's server; ``400`` when nothing listens there.
  Only loopback destinations are tunnelled: the sidecar is reachable from Docker's bridge and must
  not be an open proxy.

Stdlib only; it logs no headers and no bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys

CA_PLACEHOLDER = b"# palot local-dev sidecar: no TLS interception, so no certificate\n"
MAX_HEAD = 64 * 1024


def _response(status: str, body: bytes = b"") -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


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


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> None:
    """Consume the request body (content-length or chunked) so the reply is well-formed."""
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF (the last one ends the body)
            if size == 0:
                return


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
        await _read_body(reader, headers)
        if method == "PUT" and target == "/egress":
            writer.write(_response("204 No Content"))
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
