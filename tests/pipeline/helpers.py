"""Playing the annotator, and writing small pipeline projects for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from annoloop.geometry.annotations import Annotations
from annoloop.geometry.kinds import Kind
from annoloop.pipeline.humans import item_proposals
from annoloop.store import Project


def annotate_all(
    project: Project,
    task: str | int,
    *,
    user: str = "ann",
    label: str | None = None,
    kind: str = "bbox",
    accept_proposals: bool = False,
    junk: set[int] | None = None,
    limit: int | None = None,
) -> int:
    """Claim and submit every open item of ``task`` (as ``user``); returns how many.

    Each item gets one box (or point, or image label) with ``label``, or, with
    ``accept_proposals``, the script's proposals as they are. Images in ``junk`` are junked.
    """
    label_id = -1 if label is None else int(project.label_ids([label])[0])
    done = 0
    while limit is None or done < limit:
        item = project.next_item(task, user)
        if item is None:
            break
        if junk and item.image_id in junk:
            project.submit(item.id, user, None, state="junk")
        elif accept_proposals:
            props = item_proposals(project, item)
            props.data = {}
            project.submit(item.id, user, props, time_spent=1.5)
        else:
            k = Kind.parse(kind)
            box = {Kind.BBOX: [0.5, 0.5, 0.2, 0.3], Kind.POINT: [0.4, 0.6, 0, 0]}.get(
                k, [np.nan] * 4
            )
            ann = Annotations.from_boxes([item.image_id], [box], [label_id], kind=k)
            project.submit(item.id, user, ann, time_spent=2.0)
        done += 1
    return done


def write_pipeline(folder: Path, files: dict[str, str]) -> Path:
    """A pipeline project folder from ``{relative name: text}`` (dedented)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return folder
