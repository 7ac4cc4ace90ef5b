"""Import a formats Dataset into a project (one transaction) and export it back."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.formats.dataset import Dataset, ImageRecord
from annoloop.geometry.annotations import Annotations
from annoloop.storage import image_size
from tests.store.helpers import every_kind


def _dataset(photos, n_boxes: int = 3) -> Dataset:
    """Boxes on the first two photos (real sizes) plus one image label on the third."""
    records = [ImageRecord(p.name, *image_size(p)) for p in photos[:3]]
    ann = Annotations.concat(
        [
            Annotations.from_boxes(
                image=[0] * n_boxes + [1],
                box=[[0.5, 0.5, 0.2, 0.2]] * (n_boxes + 1),
                label=[0] * n_boxes + [1],
            ),
            Annotations.from_boxes(image=[2], box=[[np.nan] * 4], label=[2], kind=0),
        ]
    )
    return Dataset(images=records, labels=["cat", "cup", "outdoor"], annotations=ann)


def test_import_creates_images_and_labels(project, photos):
    ds = _dataset(photos)
    root = photos[0].parent
    report = project.import_dataset(ds, images_root=str(root), source="model:x@1")
    assert (report.images_added, report.images_matched) == (3, 0)
    assert (report.annotations_added, report.labels_added) == (5, 3)
    images = project.images()
    # outside media and not copied: full URLs; sizes equal the headers
    assert images["location"].tolist() == [f"file://{root / p.name}" for p in photos[:3]]
    assert images["width"].tolist() == [image_size(p)[0] for p in photos[:3]]
    df = project.annotations()
    assert df["label"].tolist() == ["cat"] * 3 + ["cup", "outdoor"]
    assert (df["source"] == "model:x@1").all()
    # importing again matches every image and label
    again = project.import_dataset(ds, images_root=str(root))
    assert (again.images_added, again.images_matched, again.labels_added) == (0, 3, 0)
    assert len(project.annotations()) == 10


def test_import_matches_existing_images_by_name(project, photos):
    ids = project.add_images(photos[:3])  # copied into media
    report = project.import_dataset(_dataset(photos))  # names relative to media
    assert (report.images_added, report.images_matched) == (0, 3)
    assert set(project.annotations()["image_id"]) == set(ids.tolist())
    # a file name from another folder still matches a unique base name
    ds = _dataset(photos)
    ds.images[0].file_name = "some/where/else/" + ds.images[0].file_name
    report = project.import_dataset(ds, images_root="/nonexistent")
    assert report.images_matched == 3 and report.images_added == 0


def test_import_with_copy_and_into_a_task(project, photos):
    project.add_task("review")
    report = project.import_dataset(
        _dataset(photos), images_root=str(photos[0].parent), copy_images=True, task="review"
    )
    assert report.images_added == 3
    assert project.images()["location"].tolist() == [p.name for p in photos[:3]]
    assert (project.media.local_path() / photos[0].name).read_bytes() == photos[0].read_bytes()
    assert len(project.annotations(task="review")) == 5


def test_an_error_in_the_middle_leaves_nothing(project, photos):
    ds = _dataset(photos, n_boxes=50)
    ds.annotations.box[40] = [0.99, 0.5, 0.5, 0.5]  # far outside its image
    with pytest.raises(InvalidInput, match=f"annotation 40 on '{photos[0].name}'"):
        project.import_dataset(ds, images_root=str(photos[0].parent), copy_images=True)
    assert project.images().empty
    assert project.labels().empty
    assert project.annotations().empty
    assert not any(project.media.local_path().iterdir())  # copies removed again


def test_size_checks(project, photos):
    ds = _dataset(photos)
    ds.images[1].width += 1
    with pytest.raises(InvalidInput, match=r"dataset image 1 .*says"):
        project.import_dataset(ds, images_root=str(photos[0].parent))
    assert project.images().empty
    ids = project.add_images(photos[:3])
    with pytest.raises(InvalidInput, match=f"matched project image {ids[1]}"):
        project.import_dataset(ds)
    # without a file, the dataset's size is needed
    ghost = Dataset([ImageRecord("ghost.jpg", 0, 0)], ["a"], Annotations.empty())
    with pytest.raises(InvalidInput, match="no image size"):
        project.import_dataset(ghost)
    ghost.images[0] = ImageRecord("ghost.jpg", 640, 480)
    assert project.import_dataset(ghost).images_added == 1


def test_missing_images_can_be_refused(project, photos):
    with pytest.raises(InvalidInput, match="3 dataset image"):
        project.import_dataset(_dataset(photos), add_missing_images=False)
    hostile = _dataset(photos)
    hostile.images[0].file_name = "../../etc/passwd"
    with pytest.raises(InvalidInput, match="dataset image 0"):
        project.import_dataset(hostile)
    assert project.images().empty


def test_export_round_trip(project, photos):
    project.add_images(photos[:3])
    label = int(project.add_label("coral"))
    image = int(project.images()["id"][0])
    project.add_annotations(every_kind(image, label), validate=False)
    project.add_labels(["unused"])
    ds = project.export_dataset()
    assert [r.file_name for r in ds.images] == [p.name for p in photos[:3]]
    assert ds.labels == ["coral"]
    assert len(ds.annotations) == 6
    assert ds.annotations.label.tolist() == [0, 0, -1, 0, 0, 0]
    only_polygons = project.export_dataset(kind="polygon")
    assert [r.file_name for r in only_polygons.images] == [photos[0].name]
    assert len(only_polygons.annotations) == 1


def test_a_large_import(sqlite_project):
    n_images, n_ann = 10_000, 100_000
    records = [ImageRecord(f"tiles/{i:05d}.tif", 256, 256) for i in range(n_images)]
    rng = np.random.default_rng(0)
    wh = rng.uniform(0.01, 0.1, (n_ann, 2))
    ann = Annotations.from_boxes(
        image=rng.integers(0, n_images, n_ann),
        box=np.hstack([rng.uniform(0.1, 0.9, (n_ann, 2)), wh]),
        label=rng.integers(0, 50, n_ann),
    )
    ds = Dataset(records, [f"species {i}" for i in range(50)], ann)
    report = sqlite_project.import_dataset(ds)
    assert (report.images_added, report.annotations_added, report.labels_added) == (
        n_images,
        n_ann,
        50,
    )
    back = sqlite_project.export_dataset()
    assert len(back.images) == n_images and len(back.annotations) == n_ann
    # the exported struct indexes its own image and label lists: same boxes per file name
    order = np.argsort(back.annotations.data["id"])
    names = np.array([r.file_name for r in back.images])[back.annotations.image[order]]
    assert names.tolist() == [records[i].file_name for i in ann.image]
    np.testing.assert_array_equal(back.annotations.box[order], ann.box)
