"""Sharded training on Dask: 1 worker and 1 shard against 2 workers and 2 shards.

A project with N digit images (all labelled) is trained with the image classifier on
pretrained MobileNetV2 features (image_size 64: feature extraction is the heavy part, done
by each worker for its shard); with 2 shards the two states are merged with
``average_model_states`` and the merged state is validated on the same held-out images.
Prints wall time (cluster start excluded) and validation accuracy.

    python bench/ai/sharded.py [--images 600] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def make_project(folder: Path, n: int) -> Any:
    """A project with the first n digits, all labelled."""
    from annoloop.ai.sample_data import write_digits
    from annoloop.geometry.annotations import Annotations
    from annoloop.geometry.kinds import Kind
    from annoloop.store import Project

    data = write_digits(folder / "digits", n)
    project = Project.init(folder / "project")
    ids = project.add_images([im.location for im in data.images], copy=False)
    label_ids = project.add_labels(data.classes)
    ann = Annotations.from_boxes(
        ids, np.full((n, 4), np.nan), label_ids[data.annotations.label], kind=Kind.LABEL
    )
    project.add_annotations(ann)
    return project


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def main() -> None:
    from annoloop.ai.features import clear_feature_cache
    from annoloop.ai.service import train_job
    from annoloop.execution import get_executor

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch threads per worker (0: torch's default, all cores in every worker)",
    )
    args = parser.parse_args()
    options = {"backbone": "mobilenet_v2", "image_size": args.image_size, "epochs": 100}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp), args.images)
        for workers in (1, 2):
            executor = get_executor(f"dask:{workers}")
            if args.torch_threads:
                executor.client.run(_set_threads, args.torch_threads)
            try:
                # warm the workers (imports, backbone) on a tiny run, as a running cluster is
                for rep in range(args.repeats + 1):
                    # every run computes its features afresh, on every worker
                    clear_feature_cache()
                    executor.client.run(clear_feature_cache)
                    start = time.perf_counter()
                    result = train_job(
                        project, "image-classifier", options, executor, shards=workers
                    )
                    took = time.perf_counter() - start
                    if rep == 0:
                        continue
                    rows.append((workers, rep, took, result.metrics["accuracy"]))
                    print(
                        f"{workers} worker(s), run {rep}: {took:.1f} s, "
                        f"validation accuracy {result.metrics['accuracy']:.4f}"
                    )
            finally:
                executor.shutdown()
        project.close()
    print("\n| workers / shards | wall time (s, mean) | validation accuracy |")
    print("| --- | --- | --- |")
    for workers in (1, 2):
        sel = [r for r in rows if r[0] == workers]
        print(f"| {workers} | {np.mean([r[2] for r in sel]):.1f} | {sel[-1][3]:.4f} |")


if __name__ == "__main__":
    main()
