"""Process entry points for the concurrency tests (importable, so spawned processes find them)."""

from __future__ import annotations

import numpy as np

from annoloop.geometry.annotations import Annotations


def add_batches(where: str, worker: int, batches: int, per_batch: int) -> list[int]:
    """Open the project and add ``batches`` batches of boxes; returns the ids written."""
    from annoloop.store import Project

    out: list[int] = []
    with Project.open(where) as project:
        images = project.images()["id"].to_numpy()
        label = project.label_ids(["a"])
        rng = np.random.default_rng(worker)
        for _ in range(batches):
            ann = Annotations.from_boxes(
                image=rng.choice(images, per_batch),
                box=np.tile([0.5, 0.5, 0.1, 0.1], (per_batch, 1)),
                label=np.repeat(label, per_batch),
                data={"author": np.full(per_batch, f"worker{worker}", dtype=object)},
            )
            out.extend(project.add_annotations(ann).tolist())
    return out


def claim_all(where: str, user: str) -> list[int]:
    """Claim and finish items of task "t" until none is left; returns the item ids taken."""
    from annoloop.store import Project

    taken: list[int] = []
    with Project.open(where) as project:
        while (item := project.next_item("t", user)) is not None:
            taken.append(item.id)
            project.submit(item.id, user, None)
    return taken
