"""``zspace.explore(...)`` from a notebook: the explorer served in a background thread, its URL returned at once."""

from __future__ import annotations

import logging
import threading
import time
import webbrowser
from typing import Any

from zspace.errors import ConfigError
from zspace.explore.data import ExploreConfig, Explorer
from zspace.explore.server import DEFAULT_HOST, bind, make_server, url_of
from zspace.explore.source import open_explorer

log = logging.getLogger(__name__)


class ExplorerHandle:
    """A running explorer: ``url``, ``stop()``; ``str(handle)`` is the URL, and Jupyter shows it as a link."""

    def __init__(self, server: Any, thread: threading.Thread, sock: Any, url: str, explorer: Explorer | None = None):
        self.url, self._server, self._thread, self._sock, self._explorer = url, server, thread, sock, explorer

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, stop the t-SNE/UMAP maps under way (their child processes) and wait for the server thread
        (at most ``timeout`` seconds); idempotent."""
        self._server.should_exit = True
        if self._explorer is not None:
            self._explorer.close()
        self._thread.join(timeout)
        self._sock.close()

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"<zspace explorer {self.url} ({'running' if self.running else 'stopped'})>"

    def _repr_html_(self) -> str:
        return f'<a href="{self.url}" target="_blank">zspace explorer: {self.url}</a>'


def _explorer(source: Any, *, labels: Any, model: Any, split: str, device: str, cfg: ExploreConfig) -> Explorer:
    """An :class:`Explorer` as it is, or the one :func:`~zspace.explore.source.open_explorer` builds (the path the
    command line takes too)."""
    if isinstance(source, Explorer):
        return source
    return open_explorer(source, labels=labels, model=model, split=split, device=device, cfg=cfg)


def explore(
    source: Any,
    *,
    labels: Any = None,
    model: Any = None,
    port: int = 0,
    host: str = DEFAULT_HOST,
    open_browser: bool = False,
    split: str = "all",
    device: str = "cpu",
    cfg: ExploreConfig | None = None,
    timeout: float = 30.0,
) -> ExplorerHandle:
    """Start the explorer in a background thread and return once it answers; does not block the notebook.

    Parameters
    ----------
    source : a run folder (points, images and decoder), a latents folder or embeddings file, a loaded ``Run`` /
        ``Latents``, an :class:`Explorer`, or an array / tensor of shape (n_samples, z_dim).
    labels : array of shape (n_samples,) int, optional (arrays only): colours the points.
    model : a zspace model, ``zspace.wrap(...)``, a pythae or diffusers model, optional: decodes clicked locations.
    port : int, 0 for any free port; ``host``: the interface (loopback by default).
    open_browser : bool, open the URL in the default browser.

    Returns
    -------
    ExplorerHandle
        ``.url`` (also ``str(handle)``) and ``.stop()``.
    """
    explorer = _explorer(source, labels=labels, model=model, split=split, device=device, cfg=cfg or ExploreConfig())
    sock = bind(host, port)
    url = url_of(sock)
    server = make_server(explorer)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"zspace-explore {url}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise ConfigError(f"the explorer did not start on {url}")
        time.sleep(0.02)
    log.info("zspace explorer: %s (handle.stop() stops it)", url)
    if open_browser:
        webbrowser.open(url)
    return ExplorerHandle(server, thread, sock, url, explorer)
