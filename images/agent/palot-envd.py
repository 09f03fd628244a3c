#!/usr/bin/env python3
"""palot-envd: the environment daemon inside an agent container (stdlib only).

It runs `opencode serve` on 0.0.0.0:8080 and keeps it running. Optional, by environment:
- PALOT_RELAY_SOCKET: also serve OpenCode through this unix socket (a host-mounted directory),
  so Palot reaches an environment that has no network at all;
- PALOT_SCRIPTED_PORT + PALOT_SCRIPTED_SCRIPT: run Palot's scripted model on the container's
  loopback (the palot package is mounted read-only at PYTHONPATH) for offline rehearsals.
"""

import asyncio
import os
import signal
import subprocess
import sys

OPENCODE_PORT = 8080


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _relay_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", OPENCODE_PORT)
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


def _start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL)


async def main() -> int:
    children: dict[str, tuple[list[str], subprocess.Popen]] = {}
    scripted_port = os.environ.get("PALOT_SCRIPTED_PORT")
    if scripted_port:
        cmd = [sys.executable, "-m", "palot.scripted", "--host", "127.0.0.1", "--port", scripted_port,
               "--script", os.environ.get("PALOT_SCRIPTED_SCRIPT", "demo")]
        children["scripted"] = (cmd, _start(cmd))
    cmd = ["opencode", "serve", "--hostname", "0.0.0.0", "--port", str(OPENCODE_PORT)]
    children["opencode"] = (cmd, _start(cmd))
    socket_path = os.environ.get("PALOT_RELAY_SOCKET")
    if socket_path:
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        await asyncio.start_unix_server(_relay_client, path=socket_path)
        os.chmod(socket_path, 0o660)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        for name, (cmd, proc) in list(children.items()):
            if proc.poll() is not None:  # keep the environment's servers up
                print(f"palot-envd: {name} exited with {proc.returncode}; restarting", file=sys.stderr, flush=True)
                children[name] = (cmd, _start(cmd))
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
    for _, proc in children.values():
        proc.terminate()
    for _, proc in children.values():
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
