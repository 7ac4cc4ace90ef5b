"""Where a PostgreSQL bulk insert of annotations spends its time: the same rows by binary
``COPY`` into a bare copy of the ``annotation`` table, into a copy with its indexes, and into
the real table (indexes and foreign keys, which PostgreSQL checks with a trigger per row).

    python bench/store/bench_pg_breakdown.py [--n 1000000] [--postgres URL]

Without ``--postgres`` a throwaway server is started (annoloop.store.pgserver: fsync off).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_store import N_IMAGES, N_LABELS, make_annotations

from annoloop.store import Project
from annoloop.store.bulk import raw_cursor
from annoloop.store.engine import write_transaction

COLUMNS = "image_id, kind, label_id, x, y, w, h, source"
TYPES = ["int8", "int2", "int8", "float8", "float8", "float8", "float8", "text"]


def copy_rows(project: Project, table: str, rows: list[tuple]) -> float:
    """Seconds to COPY ``rows`` into ``table`` and commit."""
    start = time.perf_counter()
    with write_transaction(project.engine) as conn:
        cur = raw_cursor(conn)
        with cur.copy(f"COPY {table} ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(TYPES)
            for row in rows:
                copy.write_row(row)
        cur.close()
    return time.perf_counter() - start


def run(url: str, n: int) -> dict[str, float]:
    with Project.init(tempfile.mkdtemp() + "/p", database_url=url) as project:
        ids = project.add_image_records(
            [f"{i}.jpg" for i in range(N_IMAGES)], [640] * N_IMAGES, [480] * N_IMAGES
        )
        labels = project.add_labels([f"l{i}" for i in range(N_LABELS)])
        ann = make_annotations(n, np.asarray(ids), np.asarray(labels))
        with write_transaction(project.engine) as conn:
            conn.exec_driver_sql("CREATE TABLE a_bare (LIKE annotation INCLUDING DEFAULTS)")
            conn.exec_driver_sql(
                "CREATE TABLE a_indexed (LIKE annotation INCLUDING DEFAULTS INCLUDING INDEXES)"
            )
        box = [ann.box[:, j].tolist() for j in range(4)]
        rows = list(
            zip(ann.image.tolist(), [2] * n, ann.label.tolist(), *box, ["human"] * n, strict=True)
        )
        return {
            "bare table": copy_rows(project, "a_bare", rows),
            "with its indexes": copy_rows(project, "a_indexed", rows),
            "annotation (indexes + foreign keys)": copy_rows(project, "annotation", rows),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=None, help="a server URL (default: throwaway)")
    args = parser.parse_args()
    if args.postgres:
        results = run(args.postgres, args.n)
    else:
        from annoloop.store.pgserver import PostgresServer

        with PostgresServer() as server:
            results = run(server.url, args.n)
    for what, seconds in results.items():
        print(f"COPY {args.n:,} rows into {what:38s} {seconds:7.2f} s")


if __name__ == "__main__":
    main()
