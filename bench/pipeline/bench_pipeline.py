"""Pipeline benchmarks (see RESULTS.md).

1. ``request``: a script requests annotations for N images (default 100,000), broadcast to two
   annotation tasks (2N work items). Goal: under 2 s.
2. ``to_df``: a script reads M annotations (default 1,000,000) of the task before it with
   ``self.inp.to_df()``. Goal: under 1 s.
3. ``overhead``: engine overhead per script job (a chain of K trivial scripts, and K in
   parallel), with the in-process LocalExecutor (goal: under 50 ms) and with Dask.

Run: ``python bench/pipeline/bench_pipeline.py [--images N] [--annotations M] [--jobs K]
[--skip-dask] [--json out.json]``. Timings are medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from annoloop.geometry.annotations import Annotations
from annoloop.pipeline import service
from annoloop.pipeline.engine import PipeEngine, run_pipe
from annoloop.pipeline.inout import Input
from annoloop.pipeline.script import ScriptContext
from annoloop.store import Project

REQUEST = """
    from annoloop.pipeline import Script

    class Request(Script):
        def main(self):
            for ds in self.inp.datasources:
                self.outp.request_annos(ds.image_ids())
"""
NOOP = """
    from annoloop.pipeline import Script

    class Noop(Script):
        def main(self):
            pass
"""


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    return folder


def _records(project: Project, n: int) -> np.ndarray:
    sizes = np.full(n, 640)
    return project.add_image_records([f"img/{i:07d}.jpg" for i in range(n)], sizes, sizes)


def bench_request(root: Path, n: int, repeat: int) -> dict[str, float]:
    """Wall time of the request job (script + one-transaction commit) and of run_pipe."""
    from annoloop.execution import LocalExecutor

    job_times, pipe_times = [], []
    for r in range(repeat):
        with Project.init(root / f"request{r}") as project:
            _records(project, n)
            folder = _write(root / f"request_pipe{r}", {
                "pipe.yaml": """
                    name: req
                    elements:
                      - {id: images, type: datasource}
                      - {id: request, type: script, script: request.py, inputs: [images]}
                      - {id: a, type: annotask, name: A, inputs: [request]}
                      - {id: b, type: annotask, name: B, kinds: [point], inputs: [request]}
                """,
                "request.py": REQUEST,
            })  # fmt: skip
            service.start_pipe(project, folder / "pipe.yaml", "req")
            with LocalExecutor() as ex:
                started = time.perf_counter()
                status = run_pipe(project, "req", ex)
                pipe_times.append(time.perf_counter() - started)
            job = project.job(status.element("request").job_id)
            assert job["result"]["work_items"] == 2 * n, job
            job_times.append((job["finished_at"] - job["started_at"]).total_seconds())
    return {"images": n, "work_items": 2 * n, "job_s": statistics.median(job_times),
            "run_pipe_s": statistics.median(pipe_times)}  # fmt: skip


def bench_to_df(root: Path, m: int, repeat: int) -> dict[str, float]:
    """Median time of Input.to_df() over M annotations (20 per work item)."""
    per_item = 20
    n_items = m // per_item
    with Project.init(root / "todf") as project:
        ids = _records(project, n_items)
        folder = _write(root / "todf_pipe", {
            "pipe.yaml": """
                name: todf
                elements:
                  - {id: images, type: datasource}
                  - {id: request, type: script, script: request.py, inputs: [images]}
                  - {id: boxes, type: annotask, name: Boxes, labels: [a, b, c], inputs: [request]}
                  - {id: read, type: script, script: noop.py, inputs: [boxes]}
            """,
            "request.py": REQUEST,
            "noop.py": NOOP,
        })  # fmt: skip
        service.start_pipe(project, folder / "pipe.yaml", "todf", "local")
        items = project.work_items("todf/Boxes").sort_values("image_id")
        labels = project.label_ids(["a", "b", "c"])
        rng = np.random.default_rng(0)
        wh = rng.uniform(0.05, 0.2, size=(m, 2))
        centre = rng.uniform(0.2, 0.8, size=(m, 2))
        image = np.repeat(ids, per_item)
        ann = Annotations.from_boxes(
            image, np.hstack([centre, wh]), rng.choice(labels, m),
            data={"work_item": np.repeat(items["id"].to_numpy(), per_item),
                  "author": np.full(m, "ann", dtype=object)},
        )  # fmt: skip
        t = time.perf_counter()
        project.add_annotations(ann, task="todf/Boxes", validate=False)
        insert_s = time.perf_counter() - t
        request = PipeEngine(project, "todf").script_request("read", job_id=0)
        times = []
        for _ in range(repeat):
            inp = Input(ScriptContext(project, request, logging.getLogger("bench")))
            t = time.perf_counter()
            df = inp.to_df()
            times.append(time.perf_counter() - t)
            assert len(df) == m
        read_s = []
        for _ in range(repeat):
            inp = Input(ScriptContext(project, request, logging.getLogger("bench")))
            t = time.perf_counter()
            inp.task_data()
            read_s.append(time.perf_counter() - t)
    return {"annotations": m, "to_df_s": statistics.median(times),
            "of_which_store_read_s": statistics.median(read_s), "insert_s": insert_s,
            "to_df_runs_s": [round(x, 3) for x in times]}  # fmt: skip


def bench_overhead(root: Path, k: int, executor_name: str) -> dict[str, float]:
    """Per-job time of K trivial scripts in a chain and K side by side."""
    from annoloop.execution import get_executor

    chain = ["  - {id: images, type: datasource}"]
    fan = ["  - {id: images, type: datasource}"]
    for i in range(k):
        prev = "images" if i == 0 else f"s{i - 1}"
        chain.append(f"  - {{id: s{i}, type: script, script: noop.py, inputs: [{prev}]}}")
        fan.append(f"  - {{id: s{i}, type: script, script: noop.py, inputs: [images]}}")
    out: dict[str, float] = {}
    with Project.init(root / f"overhead-{executor_name.replace(':', '-')}") as project:
        _records(project, 10)
        for shape, lines in (("chain", chain), ("parallel", fan)):
            folder = _write(root / f"{shape}-{executor_name.replace(':', '-')}", {
                "pipe.yaml": "name: " + shape + "\nelements:\n" + "\n".join(lines) + "\n",
                "noop.py": NOOP,
            })  # fmt: skip
            with get_executor(executor_name) as ex:
                # warm up the workers (imports, the store opened once per process)
                service.start_pipe(project, folder / "pipe.yaml", f"warm-{shape}", ex)
                service.start_pipe(project, folder / "pipe.yaml", shape)
                started = time.perf_counter()
                status = run_pipe(project, shape, ex)
                elapsed = time.perf_counter() - started
            assert status.finished
            out[f"{shape}_per_job_ms"] = 1000 * elapsed / k
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--only", choices=["request", "to_df", "overhead"], default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, object] = {"machine": f"{platform.machine()} {platform.processor()}",
                                  "python": platform.python_version()}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="annoloop-bench-") as tmp:
        root = Path(tmp)
        if args.only in (None, "request"):
            results["request"] = bench_request(root, args.images, args.repeat)
            print("request:", results["request"], flush=True)
        if args.only in (None, "to_df"):
            results["to_df"] = bench_to_df(root, args.annotations, args.repeat)
            print("to_df:", results["to_df"], flush=True)
        if args.only in (None, "overhead"):
            results["overhead_local"] = bench_overhead(root, args.jobs, "local")
            print("overhead local:", results["overhead_local"], flush=True)
            if not args.skip_dask:
                results["overhead_dask"] = bench_overhead(root, args.jobs, "dask:2")
                print("overhead dask:", results["overhead_dask"], flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
