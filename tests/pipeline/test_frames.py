"""The id helpers of the LOST frame (lookup tables where ids are dense, sorting where they are
not) and the image lookup by id range or id list give the same answers."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.pipeline.frames import _image_lookup, positions, unique_ids
from annoloop.store.engine import read_transaction


@pytest.mark.parametrize("spread", [1, 10**9])  # dense ids: a table; sparse: a sort
def test_unique_ids_and_positions_agree_with_numpy(spread: int) -> None:
    rng = np.random.default_rng(0)
    pool = np.unique(rng.integers(0, 5_000, 3_000)) * spread
    ids = rng.choice(pool, 20_000)
    uniq = unique_ids(ids)
    np.testing.assert_array_equal(uniq, np.unique(ids))
    np.testing.assert_array_equal(positions(uniq, ids), np.searchsorted(uniq, ids))
    # ids that are not there get a position in range, which the caller checks
    absent = np.array([-1, int(uniq[-1]) + 7], dtype=np.int64)
    pos = positions(uniq, absent)
    assert ((pos >= 0) & (pos < uniq.size)).all() and not (uniq[pos] == absent).any()
    assert positions(np.zeros(0, np.int64), absent).tolist() == [0, 0]


@pytest.mark.parametrize("columnar", [False, True])  # SQLite's driver or connectorx read
def test_image_lookup_by_range_and_by_list(project, image_ids, columnar, monkeypatch) -> None:
    from annoloop.store import bulk

    monkeypatch.setattr(bulk, "ARROW_READ_MIN_ROWS", 0 if columnar else 10**12)
    images = project.images().set_index("id")
    root = str(project.media.local_path())
    dense = np.repeat(image_ids, 3)  # every image: one id range
    sparse = image_ids[[0, -1]]  # far apart when there are many: a list of ids
    for ids in (dense, sparse, np.array([image_ids[0], 10**12])):
        with read_transaction(project.engine) as conn:
            uniq, paths, frames = _image_lookup(conn, ids, project.media)
        np.testing.assert_array_equal(uniq, np.unique(ids))
        for image_id, path in zip(uniq.tolist(), paths, strict=True):
            if image_id in images.index:
                assert path == f"{root}/{images.loc[image_id, 'location']}"
            else:
                assert path == f"{root}/"  # an id the store does not have: no location
        assert np.isnan(frames).all()  # still images have no frame number
