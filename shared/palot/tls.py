"""The one TLS context Palot's HTTP clients share.

httpx builds a context for every client it is not given one for, and building one loads the CA bundle:
20-30 ms of CPU on the event loop each time. Palot makes short-lived clients (health probes while
OpenCode starts, each event stream, each webhook delivery), so the context is built once, on first use,
the way httpx builds its own (its CA bundle; ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` honoured).
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
