"""Benchmark of the store's bulk paths against the bare driver (the practical limit).

Inserts N box annotations over 10,000 images through ``Project.add_annotations`` and reads them
back with ``Project.annotations()``; then does the same rows with a bare DBAPI ``executemany``
(SQLite) or ``COPY`` (PostgreSQL) and a bare ``SELECT`` + ``fetchall``. Prints seconds and
ratios. Reads are the median of 3 (the process's first read also pays one-time imports and
is printed apart). PostgreSQL runs on a throwaway server (annoloop.store.pgserver) unless
--postgres URL names one; --no-postgres skips it.

    python bench/store/bench_store.py [--n 1000000] [--postgres URL | --no-postgres]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import repeat
from typing import Any

import numpy as np

from annoloop.geometry.annotations import Annotations
from annoloop.store import Project
from annoloop.store.bulk import raw_cursor, timestamp_param
from annoloop.store.engine import write_transaction

N_IMAGES = 10_000
N_LABELS = 20
COLUMNS = "id, image_id, kind, label_id, x, y, w, h, source, created_at, updated_at"


def make_annotations(n: int, image_ids: np.ndarray, label_ids: np.ndarray) -> Annotations:
    """``n`` random valid boxes spread over the images."""
    rng = np.random.default_rng(0)
    wh = rng.uniform(0.01, 0.2, size=(n, 2))
    centre = rng.uniform(0.0, 1.0, size=(n, 2)) * (1 - wh) + wh / 2
    return Annotations.from_boxes(
        image=image_ids[rng.integers(0, len(image_ids), n)],
        box=np.hstack([centre, wh]),
        label=label_ids[rng.integers(0, len(label_ids), n)],
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bare_insert(project: Project, ann: Annotations, start_id: int) -> None:
    """The same rows through the bare driver: executemany (SQLite) or COPY (PostgreSQL)."""
    n = len(ann)
    with write_transaction(project.engine) as conn:
        now = timestamp_param(conn)
        rows = zip(
            range(start_id, start_id + n),
            ann.image.tolist(),
            repeat(2),
            ann.label.tolist(),
            *ann.box.T.tolist(),
            repeat("human"),
            repeat(now),
            repeat(now),
            strict=False,
        )
        cur = raw_cursor(conn)
        if conn.dialect.name == "sqlite":
            cur.executemany(
                f"INSERT INTO annotation ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        else:
            with cur.copy(f"COPY annotation ({COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def bare_select(project: Project) -> int:
    """The same columns as Project.annotations() with a bare SELECT + fetchall."""
    with project.engine.connect() as conn:
        cur = raw_cursor(conn)
        cur.execute(
            "SELECT id, image_id, task_id, kind, label_id, x, y, w, h, confidence, shape, "
            "source, author, time_spent, created_at, work_item_id FROM annotation"
        )
        return len(cur.fetchall())


def run(label: str, folder: str, database_url: str | None, n: int) -> list[tuple[str, float]]:
    project = Project.init(folder, database_url=database_url, name=f"bench-{label}")
    try:
        sizes = np.full(N_IMAGES, 1000)
        image_ids = project.add_image_records(
            [f"img/{i:06d}.jpg" for i in range(N_IMAGES)], sizes, sizes
        )
        label_ids = project.add_labels([f"class{i}" for i in range(N_LABELS)])
        ann = make_annotations(n, image_ids, label_ids)
        t_add, ids = timed(lambda: project.add_annotations(ann))
        # reads: the median of 3; the first one also pays one-time imports (reported apart)
        t_cold, df = timed(project.annotations)
        if len(df) != n or len(ids) != n:
            raise SystemExit(f"{label}: wrote {len(ids)}, read {len(df)}, expected {n}")
        del df
        t_read = statistics.median(timed(project.annotations)[0] for _ in range(3))
        print(f"{label}: first read of the process (imports included) {t_cold:.2f} s", flush=True)
        project.delete_annotations(ids)
        t_bare_insert, _ = timed(lambda: bare_insert(project, ann, int(ids.max()) + 1))
        t_bare_read, count = timed(lambda: bare_select(project))
        if count != n:
            raise SystemExit(f"{label}: bare read {count} rows, expected {n}")
        t_bare_read = statistics.median(
            [t_bare_read, *(timed(lambda: bare_select(project))[0] for _ in range(2))]
        )
    finally:
        project.close()
    return [
        (f"{label} insert {n:,} (Project.add_annotations)", t_add),
        (f"{label} insert {n:,} (bare driver)", t_bare_insert),
        (f"{label} read {n:,} (Project.annotations -> DataFrame)", t_read),
        (f"{label} read {n:,} (bare SELECT fetchall)", t_bare_read),
    ]


def print_table(rows: list[tuple[str, float]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"{'step':<{width}}  {'seconds':>8}  {'vs bare':>8}")
    for i in range(0, len(rows), 4):
        block = rows[i : i + 4]
        for k, (name, secs) in enumerate(block):
            bare = block[k + 1][1] if k % 2 == 0 else secs
            print(f"{name:<{width}}  {secs:8.2f}  {secs / bare:7.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="annotations to insert")
    parser.add_argument("--postgres", help="PostgreSQL URL (default: a throwaway server)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    rows: list[tuple[str, float]] = []
    tmp = tempfile.mkdtemp(prefix="annoloop-bench-")
    try:
        rows += run("sqlite", os.path.join(tmp, "sqlite"), None, args.n)
        if not args.no_postgres:
            if args.postgres:
                rows += run("postgres", os.path.join(tmp, "pg"), args.postgres, args.n)
            else:
                from annoloop.store.pgserver import PostgresServer, find_pg_bin

                if find_pg_bin() is None:
                    print("PostgreSQL binaries not found: PostgreSQL skipped", file=sys.stderr)
                else:
                    with PostgresServer() as server:
                        url = server.create_database("bench")
                        rows += run("postgres", os.path.join(tmp, "pg"), url, args.n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
