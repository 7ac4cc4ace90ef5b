"""Run the app with uvicorn: in the foreground (``annoloop serve``) or in a background thread
(tests, the demo, benchmarks)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

from annoloop._lazy import lazy_import
from annoloop.errors import AnnoloopError


def url_for(host: str, port: int) -> str:
    """The URL a browser opens for a server on ``host``:``port``."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def _config(app: Any, host: str, port: int, log_level: str) -> Any:
    uvicorn = lazy_import("uvicorn", "server")
    # One process (the store handles concurrency); h11 is enough for an API on a LAN.
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)


def serve(
    project_folder: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    secret_key: str | None = None,
    settings: Any = None,
    log_level: str = "info",
) -> None:
    """Serve ``project_folder`` (a folder, database URL or ``Project``) until interrupted."""
    from annoloop.server import create_app

    uvicorn = lazy_import("uvicorn", "server")
    app = create_app(project_folder, secret_key=secret_key, settings=settings)
    # uvicorn shuts down cleanly on Ctrl-C, then re-raises it: that is the normal end.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(_config(app, host, port, log_level)).run()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether ``host``:``port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class BackgroundServer:
    """A uvicorn server in a daemon thread, on 127.0.0.1 and a free port by default.

    ``with BackgroundServer(app) as server: ... server.url ...``: started on enter (waits
    until it accepts connections), stopped on exit.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_level: str = "warning",
    ) -> None:
        uvicorn = lazy_import("uvicorn", "server")
        self.host = host
        self.port = port or free_port(host)
        self._server = uvicorn.Server(_config(app, self.host, self.port, log_level))
        self._server.install_signal_handlers = lambda: None  # not the main thread
        self._thread = threading.Thread(
            target=self._server.run, name="annoloop-server", daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, with a trailing slash."""
        return url_for(self.host, self.port)

    def start(self, timeout: float = 20.0) -> BackgroundServer:
        """Start and wait until the server is up."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise AnnoloopError(f"the server on {self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
