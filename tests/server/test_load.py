"""A reduced load test: 8 annotators x 25 items against a real uvicorn server, on SQLite and
on PostgreSQL. Asserts the invariants (no item handed out twice, no annotation lost or
doubled, every item done, errors none), never the latency; the full run is
bench/server/load.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.server.load import run_load

ANNOTATORS, ITEMS = 8, 25


def _check(result) -> None:
    summary = result.summary()
    assert summary["errors"] == 0, [e for log in result.logs for e in log.errors][:5]
    checks = summary["checks"]
    assert checks["handed_out"] == ANNOTATORS * ITEMS
    assert checks["handed_out_twice"] == 0
    assert checks["annotations"] == ANNOTATORS * ITEMS
    assert checks["annotations_lost_or_doubled"] == 0
    assert checks["items_not_done"] == 0
    assert checks["items_with_wrong_holder"] == 0
    assert checks["ok"]
    # every annotator got work (the lock spreads items; nobody starves)
    assert all(log.items for log in result.logs)


@pytest.mark.slow
def test_concurrent_annotators_on_sqlite(tmp_path: Path) -> None:
    _check(run_load(ANNOTATORS, ITEMS, backend="sqlite", workdir=tmp_path))


@pytest.mark.slow
def test_concurrent_annotators_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    result = run_load(
        ANNOTATORS, ITEMS, backend="postgres", workdir=tmp_path, database_url=postgres_url
    )
    _check(result)
