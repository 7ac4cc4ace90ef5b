"""Load test of the annotation API: many simulated annotators fetch and submit work items at
once against a real uvicorn server on 127.0.0.1.

Each annotator is a thread with its own httpx client and session: it logs in, then repeats
``POST /api/tasks/T/next`` and ``POST /api/items/ID/submit`` (one box) until it has done its
share or the task is empty. Afterwards the store is checked: no item was handed out twice,
every submitted annotation is stored exactly once on its item, every item is done. Latencies
(p50 / p95 / max) of next and submit are reported per backend.

    python bench/server/load.py                       # 50 annotators x 200 items, SQLite
    python bench/server/load.py --backend postgres    # the same on a throwaway PostgreSQL
    python bench/server/load.py --annotators 8 --items 25 --backend both

The server runs in its own process (``python -m bench.server.load --serve``), so the client
threads do not compete with it for the GIL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PASSWORD = "load-test-password"


@dataclass
class AnnotatorLog:
    """What one simulated annotator did."""

    name: str
    items: list[int] = field(default_factory=list)
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    """The outcome of one run."""

    backend: str
    annotators: int
    items_per_annotator: int
    wall_s: float
    logs: list[AnnotatorLog]
    checks: dict[str, Any]
    think_ms: float = 0.0

    def latencies(self, which: str) -> list[float]:
        return [v for log in self.logs for v in getattr(log, f"{which}_ms")]

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backend": self.backend,
            "annotators": self.annotators,
            "items_per_annotator": self.items_per_annotator,
            "wall_s": round(self.wall_s, 2),
            "think_ms": self.think_ms,
        }
        done = sum(len(log.items) for log in self.logs)
        out["items_done"] = done
        out["requests_per_s"] = round(2 * done / self.wall_s, 1) if self.wall_s else None
        for which in ("next", "submit"):
            values = sorted(self.latencies(which))
            if values:
                out[which] = {
                    "p50_ms": round(_pct(values, 50), 2),
                    "p95_ms": round(_pct(values, 95), 2),
                    "max_ms": round(values[-1], 2),
                    "n": len(values),
                }
        out["errors"] = sum(len(log.errors) for log in self.logs)
        out["checks"] = self.checks
        return out


def _pct(sorted_values: list[float], p: float) -> float:
    k = (len(sorted_values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


# -- the project ---------------------------------------------------------------------------------


def make_project(folder: Path, n_annotators: int, n_items: int, database_url: str | None) -> None:
    """A project with ``n_items`` image records (no files: annotators never fetch pixels
    here), one label, task ``load`` holding every image, and the annotator accounts."""
    import numpy as np

    from annoloop.server import add_user
    from annoloop.store import Project

    with Project.init(folder, database_url=database_url, name="load") as p:
        ids = p.add_image_records(
            [f"frames/{i:06d}.jpg" for i in range(n_items)],
            np.full(n_items, 640),
            np.full(n_items, 480),
        )
        p.add_label("thing")
        p.add_task("load", kinds=["bbox"])
        p.request_annotations(ids, ["load"])
        for k in range(n_annotators):
            add_user(p, f"ann{k:03d}", PASSWORD, "annotator")


def check_store(folder: Path, logs: list[AnnotatorLog]) -> dict[str, Any]:
    """The invariants: no item handed out twice, no annotation lost, every item finished."""
    from annoloop.store import Project

    handed = [i for log in logs for i in log.items]
    twice = [i for i, n in Counter(handed).items() if n > 1]
    with Project.open(folder) as p:
        items = p.work_items("load")
        ann = p.annotations(task="load")
    per_item = Counter(int(v) for v in ann["work_item_id"].dropna())
    lost = [i for i in handed if per_item.get(i, 0) != 1]
    by_author = dict(zip(items["id"], items["locked_by"], strict=True))
    wrong_author = [
        i for log in logs for i in log.items if by_author.get(i) != log.name
    ]  # fmt: skip
    return {
        "handed_out": len(handed),
        "handed_out_twice": len(twice),
        "annotations": len(ann),
        "annotations_lost_or_doubled": len(lost),
        "items_not_done": int((items["state"] != "done").sum()),
        "items_with_wrong_holder": len(wrong_author),
        "ok": not twice and not lost and not wrong_author and len(ann) == len(handed),
    }


# -- the server process ------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(folder: Path, port: int) -> subprocess.Popen:
    """uvicorn serving ``folder`` on 127.0.0.1:``port`` in a child process (waits until up)."""
    import httpx

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.server.load", "--serve", str(folder), "--port", str(port)],
        cwd=root,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError("the server did not start in 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the child server by its own pid."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _serve(folder: str, port: int) -> None:
    from annoloop.server.run import serve
    from annoloop.server.settings import ServerSettings

    # A short token cache: the load is 50 sessions hammering the same tokens.
    serve(folder, host="127.0.0.1", port=port, settings=ServerSettings(), log_level="warning")


# -- annotators ---------------------------------------------------------------------------------


def annotate(
    base_url: str, name: str, n_items: int, start: threading.Barrier, *, think_ms: float = 0.0
) -> AnnotatorLog:
    """One annotator: log in, then next + submit until ``n_items`` are done or none is left
    (waiting 0.5 to 1.5 x ``think_ms`` on each item, as a person would)."""
    import httpx

    log = AnnotatorLog(name)
    rng = random.Random(name)  # people differ: think times vary around think_ms
    box = {"kind": "bbox", "label": 1, "box": [0.5, 0.5, 0.25, 0.25]}
    with httpx.Client(base_url=base_url, timeout=60) as c:
        r = c.post("/api/login", json={"name": name, "password": PASSWORD})
        r.raise_for_status()
        c.cookies.clear()
        c.headers["Authorization"] = f"Bearer {r.json()['token']}"
        start.wait()
        if think_ms:  # nobody starts at the very same millisecond
            time.sleep(rng.uniform(0, think_ms / 1000))
        while len(log.items) < n_items:
            t0 = time.perf_counter()
            r = c.post("/api/tasks/1/next")
            log.next_ms.append((time.perf_counter() - t0) * 1000)
            if r.status_code == 204:
                break
            if r.status_code != 200:
                log.errors.append(f"next {r.status_code} {r.text[:200]}")
                continue
            item = r.json()["item"]["id"]
            if think_ms:
                time.sleep(rng.uniform(0.5, 1.5) * think_ms / 1000)
            t0 = time.perf_counter()
            r = c.post(f"/api/items/{item}/submit", json={"shapes": [box]})
            log.submit_ms.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                log.errors.append(f"submit {item} {r.status_code} {r.text[:200]}")
                continue
            log.items.append(item)
    return log


def run_load(
    n_annotators: int,
    n_items: int,
    *,
    backend: str = "sqlite",
    workdir: Path | None = None,
    database_url: str | None = None,
    think_ms: float = 0.0,
) -> LoadResult:
    """Set up a project on ``backend`` (``sqlite`` or ``postgres``), serve it, run the
    annotators, check the store; the server and any PostgreSQL are stopped afterwards.

    ``database_url``: an empty PostgreSQL database to use instead of starting a throwaway
    server. ``think_ms``: time each annotator spends on an item between next and submit
    (0: a closed loop, the worst case)."""
    tmp = Path(tempfile.mkdtemp(prefix="annoloop-load-", dir=workdir))
    pg = None
    proc = None
    try:
        url = database_url
        if backend == "postgres" and url is None:
            from annoloop.store.pgserver import PostgresServer

            pg = PostgresServer()
            pg.start()
            url = str(pg.create_database("load"))
        folder = tmp / "proj"
        make_project(folder, n_annotators, n_annotators * n_items, url)
        port = _free_port()
        proc = start_server(folder, port)
        barrier = threading.Barrier(n_annotators + 1)
        logs: list[AnnotatorLog | None] = [None] * n_annotators

        def run(k: int) -> None:
            base = f"http://127.0.0.1:{port}"
            logs[k] = annotate(base, f"ann{k:03d}", n_items, barrier, think_ms=think_ms)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(n_annotators)]
        for t in threads:
            t.start()
        barrier.wait()  # every annotator logged in: start the clock
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        stop_server(proc)
        proc = None
        done = [log for log in logs if log is not None]
        if len(done) != n_annotators:
            raise RuntimeError(f"{n_annotators - len(done)} annotator thread(s) crashed")
        checks = check_store(folder, done)
        return LoadResult(backend, n_annotators, n_items, wall, done, checks, think_ms)
    finally:
        if proc is not None:
            stop_server(proc)
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--items", type=int, default=200, help="items per annotator")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--json", type=Path, help="also write the summaries here")
    parser.add_argument(
        "--think-ms", type=float, default=0.0, help="time an annotator spends on each item"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.port)
        return
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    summaries = []
    for backend in backends:
        result = run_load(args.annotators, args.items, backend=backend, think_ms=args.think_ms)
        summary = result.summary()
        summaries.append(summary)
        print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=2))


if __name__ == "__main__":
    main()
