"""Serve the explorer with uvicorn on a socket bound here, so that port 0 (any free port) gives a known URL."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import webbrowser

import uvicorn

from zspace.errors import ConfigError
from zspace.explore.app import create_app
from zspace.explore.data import Explorer

log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


def bind(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 = a free one); ConfigError when that cannot be had."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host!r} cannot be resolved: {e.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port/`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if sock.family == socket.AF_INET6 else f"http://{host}:{port}/"


def make_server(explorer: Explorer) -> uvicorn.Server:
    """A uvicorn server for the explorer's app that leaves logging to the caller (no handlers configured)."""
    config = uvicorn.Config(create_app(explorer), log_config=None, access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve(
    explorer: Explorer,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    sock: socket.socket | None = None,
    open_browser: bool = False,
) -> None:
    """Serve ``explorer`` until interrupted (Ctrl-C or SIGTERM); logs the URL first.

    ``sock`` is a socket from :func:`bind` (bound before the slow loading, so a port in use fails at once);
    without it one is bound to ``host:port`` here. A map under way is stopped when the server stops (its child
    process terminated), so nothing native is left running while the interpreter ends. Ctrl-C is re-raised as
    KeyboardInterrupt once the server has shut down.
    """
    sock = sock if sock is not None else bind(host, port)
    url = url_of(sock)
    if not ipaddress.ip_address(sock.getsockname()[0]).is_loopback:
        log.warning("listening on %s: anyone who can reach this machine can see these latents and images", url)
    log.info("zspace explorer: %s (Ctrl-C stops it)", url)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, (url,)).start()
    try:
        make_server(explorer).run(sockets=[sock])
    finally:
        explorer.close()
        sock.close()
