"""A throwaway PostgreSQL server for tests, benchmarks and local tools.

Uses the server binaries on the machine (``initdb``, ``pg_ctl`` on PATH or under
``/usr/lib/postgresql/*/bin``). PostgreSQL refuses to run as root, so when this process is
root the binaries run as the ``postgres`` OS user (``runuser -u postgres --``, else ``su``).
The server listens on 127.0.0.1 only, on a free port, with its socket in its own folder, and
trades durability for speed (``fsync=off``): it is for data that may be lost.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from annoloop.errors import AnnoloopError, MissingDependency, NotFound

_NAME_OK = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(re.sub(r"\D", "", Path(p).parent.name) or 0),
        reverse=True,
    )
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres_prefix() -> list[str]:
    """The command prefix that runs a binary as the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--"]
    raise MissingDependency("runuser", "postgres")  # pragma: no cover - util-linux is standard


class PostgresServer:
    """One throwaway PostgreSQL cluster: ``start()`` returns its base URL, ``stop()`` ends it.

    Usable as a context manager. ``url`` is ``postgresql+psycopg://postgres@127.0.0.1:PORT/``;
    :meth:`create_database` adds a database and returns its URL.
    """

    def __init__(self, *, port: int | None = None, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_pg_bin()
        if self.bin_dir is None:
            raise NotFound(
                "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under "
                "/usr/lib/postgresql/*/bin; install postgresql"
            )
        self.port = port
        self.root: Path | None = None
        self._running = False

    # -- paths ----------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """The cluster's data folder."""
        if self.root is None:
            raise AnnoloopError("the PostgreSQL server is not started")
        return self.root / "data"

    @property
    def url(self) -> str:
        """Base URL without a database name."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [*_as_postgres_prefix(), str(self.bin_dir / args[0]), *args[1:]]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if check and proc.returncode != 0:
            raise AnnoloopError(
                f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}"
            )
        return proc

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> str:
        """initdb into a fresh temporary folder and start the server; returns :attr:`url`."""
        # Not under pytest's tmp dirs: those are private to root and postgres cannot enter.
        self.root = Path(tempfile.mkdtemp(prefix="annoloop-pg-"))
        (self.root / "sock").mkdir()
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            for path in (self.root, self.root / "sock"):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        try:
            self._run(
                "initdb", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync",
                "-D", str(self.data_dir),
            )  # fmt: skip
            last_error: Exception | None = None
            for _ in range(3):  # the free port may be taken between choosing and binding
                port = self.port or free_port()
                options = (
                    f"-p {port} -k {self.root / 'sock'} -c listen_addresses=127.0.0.1 "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                    "-c max_connections=200"
                )
                proc = self._run(
                    "pg_ctl", "-D", str(self.data_dir), "-o", options, "-w", "-t", "60",
                    "-l", str(self.root / "server.log"), "start",
                    check=False,
                )  # fmt: skip
                if proc.returncode == 0:
                    self.port = port
                    self._running = True
                    atexit.register(self.stop)
                    return self.url
                last_error = AnnoloopError(f"pg_ctl start failed: {self._log_tail()}")
                if self.port:
                    break
            raise last_error or AnnoloopError("pg_ctl start failed")
        except BaseException:
            self.stop()
            raise

    def _log_tail(self) -> str:
        log = (self.root or Path(".")) / "server.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"

    def stop(self) -> None:
        """Stop the server at once (``-m immediate``) and remove its folder."""
        if self._running:
            self._running = False
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PostgresServer:
        if not self._running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases ------------------------------------------------------------------------
    def create_database(self, name: str) -> str:
        """Create database ``name`` (lower-case letters, digits, _) and return its URL."""
        import psycopg

        if not _NAME_OK.match(name):
            raise AnnoloopError(f"database name {name!r} must match {_NAME_OK.pattern}")
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                break
            except psycopg.OperationalError:
                # "source database is being accessed by other users" while another test's
                # connection to template1 closes: try again shortly.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return self.url + name
