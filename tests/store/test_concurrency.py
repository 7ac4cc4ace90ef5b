"""Concurrent writers lose nothing; concurrent annotators never share a work item."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from annoloop.store import Project
from tests.store import workers
from tests.store.helpers import add_records

N_ITEMS = 200


def _spawn_pool(n: int) -> ProcessPoolExecutor:
    # spawn, not fork: a forked child would inherit the parent's open database connections
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))


def test_two_processes_adding_batches_lose_nothing(tmp_path):
    folder = tmp_path / "p"
    with Project.init(folder) as p:
        add_records(p, 50)
        p.add_labels(["a"])
    with _spawn_pool(2) as pool:
        futures = [pool.submit(workers.add_batches, str(folder), w, 20, 300) for w in (1, 2)]
        written = [f.result(timeout=300) for f in futures]
    with Project.open(folder) as p:
        df = p.annotations()
    assert len(df) == 2 * 20 * 300
    assert sorted(df["id"].tolist()) == sorted(written[0] + written[1])
    assert df["author"].value_counts().to_dict() == {"worker1": 6000, "worker2": 6000}


def _prepare_items(project: Project) -> None:
    images = add_records(project, N_ITEMS)
    project.add_task("t")
    rng = np.random.default_rng(0)
    project.request_annotations(images, "t", priority=rng.integers(0, 5, N_ITEMS))


def _check_exactly_once(project: Project, taken: list[list[int]]) -> None:
    flat = [i for part in taken for i in part]
    assert len(flat) == N_ITEMS, "an item was handed out twice or not at all"
    assert sorted(flat) == sorted(project.work_items("t")["id"].tolist())
    assert (project.work_items("t")["state"] == "done").all()


def test_threads_claiming_on_sqlite_get_each_item_once(tmp_path):
    folder = tmp_path / "p"
    with Project.init(folder) as p:
        _prepare_items(p)
    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(lambda k: workers.claim_all(str(folder), f"u{k}"), range(8)))
    with Project.open(folder) as p:
        _check_exactly_once(p, taken)
    assert sum(1 for t in taken if t) > 1  # the work was really shared


def test_processes_claiming_on_sqlite_get_each_item_once(tmp_path):
    folder = tmp_path / "p"
    with Project.init(folder) as p:
        _prepare_items(p)
    with _spawn_pool(3) as pool:
        futures = [pool.submit(workers.claim_all, str(folder), f"u{k}") for k in range(3)]
        taken = [f.result(timeout=300) for f in futures]
    with Project.open(folder) as p:
        _check_exactly_once(p, taken)


@pytest.mark.postgres
def test_connections_claiming_on_postgres_get_each_item_once(tmp_path, postgres_url):
    with Project.init(tmp_path / "p", database_url=postgres_url) as p:
        _prepare_items(p)
    with ThreadPoolExecutor(8) as pool:
        # each annotator opens its own project, so each has its own connections
        taken = list(pool.map(lambda k: workers.claim_all(postgres_url, f"u{k}"), range(8)))
    with Project.open(postgres_url) as p:
        _check_exactly_once(p, taken)
    assert sum(1 for t in taken if t) > 1
