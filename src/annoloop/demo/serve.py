"""The demo's last step: serve the demo project in the web UI.

:func:`prepare` gives the project a login and something to annotate; :func:`check` starts the
server on 127.0.0.1, logs in, checks the UI and the task list answer, runs detection against
it in remote mode (:func:`remote_detect`: media and boxes through the REST API only), and stops
it;
:func:`serve_foreground` serves until Ctrl-C. ``annoloop demo`` ends with one of them and
prints the URL and the login.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEMO_USER = "demo"
DEMO_PASSWORD = "annoloop-demo"  # a local demo on 127.0.0.1; printed for the user to log in
DEMO_TASK = "demo boxes and points"


@dataclass
class ServeInfo:
    """What the demo prints at its end."""

    url: str
    user: str
    password: str
    task: str
    open_items: int
    checked: bool
    command: str
    remote: str = ""  # what remote detection through the API did (check only)

    def summary(self) -> str:
        """One line for the demo's output."""
        state = "answered (login, UI, task list)" if self.checked else "ready"
        line = (
            f"web UI at {self.url} {state}; log in as {self.user} / {self.password}; task "
            f"{self.task!r} has {self.open_items} open items"
        )
        return f"{line}; {self.remote}" if self.remote else line


def prepare(project: Any) -> tuple[str, int]:
    """Add the demo admin and the demo's own box/point task with every image requested (both
    kept when they exist); returns (task name, open items of that task)."""
    from annoloop.errors import AlreadyExists
    from annoloop.server.auth import add_user

    with contextlib.suppress(AlreadyExists):  # a demo served again keeps its user
        add_user(project, DEMO_USER, DEMO_PASSWORD, "admin")
    if DEMO_TASK not in set(project.tasks()["name"]):
        project.add_task(DEMO_TASK, kinds=["bbox", "point", "polygon", "line", "label"])
    ids = project.images()["id"].to_numpy()
    project.request_annotations(ids, [project.task_id(DEMO_TASK)])
    counts = project.stats().get("work_items", {}).get(DEMO_TASK, {})
    return DEMO_TASK, int(counts.get("open", 0))


def _info(folder: Path, url: str, task: str, open_items: int, checked: bool) -> ServeInfo:
    return ServeInfo(
        url=url,
        user=DEMO_USER,
        password=DEMO_PASSWORD,
        task=task,
        open_items=open_items,
        checked=checked,
        command=f"annoloop serve {folder} --port 8000",
    )


def check(folder: Path, *, timeout: float = 20.0) -> ServeInfo:
    """Serve ``folder`` on 127.0.0.1 (a free port), log in, fetch the UI and the task list,
    stop; an AnnoloopError says which request failed."""
    import httpx

    from annoloop.errors import AnnoloopError
    from annoloop.server import create_app
    from annoloop.server.run import BackgroundServer
    from annoloop.store import Project

    with Project.open(folder) as project:
        task, open_items = prepare(project)
        app = create_app(project)
        with (
            BackgroundServer(app) as server,
            httpx.Client(base_url=server.url, timeout=timeout) as client,
        ):
            page = client.get("/")
            login = client.post("/api/login", json={"name": DEMO_USER, "password": DEMO_PASSWORD})
            tasks = client.get("/api/tasks")
            for what, r in (("GET /", page), ("POST /api/login", login), ("GET /api/tasks", tasks)):
                if r.status_code != 200:
                    raise AnnoloopError(f"demo server check: {what} answered {r.status_code}")
            url = server.url
            remote = remote_detect(project, url, folder / "detections" / "remote-cache")
    info = _info(folder, url, task, open_items, checked=True)
    info.remote = remote
    return info


def remote_detect(project: Any, url: str, cache: Path) -> str:
    """OpenEM's remote workflow against the served project: with the demo user's API key,
    MTCNN runs here over the images no detector has stamped yet, fetched and uploaded through
    the REST API only; returns what it did, in words."""
    import annoloop.detect as detect
    from annoloop.server.auth import issue_api_key

    key = issue_api_key(project, DEMO_USER)
    report = detect.run(
        "mtcnn", server=url, token=key, images="all", img_max_side=256, keep_threshold=0.9,
        device="cpu", cache_dir=cache,
    )  # fmt: skip
    s = report.summary()
    return (
        f"remote detection through the REST API: {s['processed']} images processed, "
        f"{s['boxes']} faces uploaded, {s['skipped']} skipped (stamped already)"
    )


def serve_foreground(folder: Path, *, host: str = "127.0.0.1", port: int = 8000) -> ServeInfo:
    """Prepare ``folder`` and return what to print; the caller then calls :func:`run_forever`."""
    from annoloop.server.run import free_port, port_is_free, url_for
    from annoloop.store import Project

    with Project.open(folder) as project:
        task, open_items = prepare(project)
    if not port_is_free(host, port):
        port = free_port(host)
    info = _info(folder, url_for(host, port), task, open_items, checked=False)
    info.command = f"annoloop serve {folder} --port {port}"
    return info


def run_forever(folder: Path, url_port: int, host: str = "127.0.0.1") -> None:
    """Serve ``folder`` until Ctrl-C (uvicorn handles the signal and returns)."""
    from annoloop.server.run import serve

    serve(folder, host=host, port=url_port, log_level="warning")


def run(ctx: Any) -> str:
    """Demo step contract: check that the demo project is served; returns the summary line."""
    info = check(Path(ctx.folder))
    ctx.made["serve"] = info
    return info.summary()
