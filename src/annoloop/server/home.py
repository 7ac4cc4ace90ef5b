"""One server, several projects: the home project's context and the other projects' contexts,
opened on first use and kept until the server stops (``app.state.server``)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from annoloop.errors import AnnoloopError, NotFound
from annoloop.server import projects as registry
from annoloop.server.context import ServerContext

log = logging.getLogger(__name__)


class ServerHome:
    """The home context and a cache of per-project contexts.

    Each project gets its own :class:`ServerContext` (its own pipe driver and background
    runner) sharing the home's settings, tokens and login guard: accounts are server-wide.
    A project is opened on its first request; at start, projects with running pipes are
    opened too (in a background thread), so their pipes go on after a restart.
    """

    def __init__(self, home: ServerContext) -> None:
        self.home = home
        self._contexts: dict[str, ServerContext] = {}
        self._lock = threading.Lock()
        self._running = False
        self._closed = False
        self._resuming: threading.Thread | None = None

    @property
    def project(self) -> Any:
        """The home project (its database holds the registry)."""
        return self.home.project

    def start(self) -> None:
        """Start the home context; contexts opened later start when they open."""
        with self._lock:
            self._running = True
            self.home.start()
        if self.home.settings.drive_pipes:
            self._resuming = threading.Thread(
                target=self.resume_pipes, name="annoloop-resume-pipes", daemon=True
            )
            self._resuming.start()

    def wait_resumed(self, timeout: float | None = None) -> None:
        """Wait until the start's look for running pipes has opened and closed every project
        (before moving or deleting a project's folder under a starting server)."""
        if self._resuming is not None:
            self._resuming.join(timeout)

    def resume_pipes(self) -> list[str]:
        """Open the contexts of the registered projects that have running pipes (their
        drivers take the pipes over); returns their names."""
        from annoloop.pipeline.service import list_pipes

        resumed = []
        for entry in registry.list_projects(self.project)[1:]:
            if self._closed:
                break
            try:
                with registry.open_project(self.project, entry) as p:
                    running = any(x["state"] == "running" for x in list_pipes(p))
                if running:
                    self.context(entry.name)
                    resumed.append(entry.name)
            except Exception:  # a broken project must not stop the others
                if self._closed:
                    break
                log.exception("looking for running pipes in project %s", entry.name)
        return resumed

    def role(self, user: Any, name: str) -> str | None:
        """``user``'s role in project ``name`` (None: not a member, or no such project)."""
        return registry.role_in(self.project, user, name)

    def context(self, name: str) -> ServerContext:
        """The context of project ``name`` (the home context for the home's name), opened
        on first use. The caller has checked membership."""
        if name == self.project.name:
            return self.home
        with self._lock:
            ctx = self._contexts.get(name)
            if ctx is not None:
                return ctx
            if self._closed:
                raise AnnoloopError("the server is shutting down")
            ctx = self._open(name)
            self._contexts[name] = ctx
            if self._running:
                ctx.start()
            return ctx

    def _open(self, name: str) -> ServerContext:
        entry = registry.get_project(self.project, name)
        try:
            project = registry.open_project(self.project, entry)
        except AnnoloopError as exc:
            # The location is the server's business: log it, tell the client only the name.
            log.error("cannot open project %s at %s: %s", name, entry.location, exc)
            raise NotFound(f"project {name!r} cannot be opened on the server") from None
        return ServerContext(
            project=project,
            settings=self.home.settings,
            tokens=self.home.tokens,
            guard=self.home.guard,
            owns_project=True,
            home_project=self.project,
            api=entry.api,
        )

    def opened(self) -> list[str]:
        """Names of the projects whose contexts are open (besides the home)."""
        with self._lock:
            return sorted(self._contexts)

    def close(self) -> None:
        """Close every project context, then the home's."""
        with self._lock:
            self._closed = True
            self._running = False
        # the look for running pipes stops at the next project: let it close the one it has
        # open, so nothing touches a project's files once the server is closed
        self.wait_resumed(timeout=30)
        with self._lock:
            contexts, self._contexts = list(self._contexts.values()), {}
        for ctx in contexts:
            try:
                ctx.close()
            except Exception:  # one broken project must not keep the others open
                log.exception("closing project %s", ctx.project.name)
        self.home.close()
