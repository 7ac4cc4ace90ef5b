"""The four tasks and the job envelope, end to end on mosaics of real photos."""

from __future__ import annotations

import numpy as np
import pytest

from annoloop.errors import InvalidInput
from annoloop.points import (
    ClassifyFeaturesMsg,
    ClassifyImageMsg,
    ExtractFeaturesMsg,
    ExtractorSpec,
    FeatureExtractor,
    ImageFeatures,
    JobMsg,
    JobReturnMsg,
    TrainClassifierMsg,
    TrainOptions,
    classify_features,
    classify_image,
    extract_features,
    preprocess_labels,
    run_job,
    train_classifier,
)
from annoloop.points.classifiers import load_classifier
from annoloop.storage import Location

DUMMY = ExtractorSpec(name="dummy", patch_size=64, feature_dim=48)


def _extract_all(mosaic_set: dict) -> dict:
    root: Location = mosaic_set["root"]
    labels = {}
    for i, (url, rc, names) in enumerate(
        zip(mosaic_set["images"], mosaic_set["points"], mosaic_set["labels"], strict=True)
    ):
        floc = root.join("features", f"m{i}.npz").url
        ret = extract_features(
            ExtractFeaturesMsg(
                extractor=DUMMY, rowcols=[tuple(p) for p in rc.tolist()], image_loc=url,
                feature_loc=floc,
            )
        )  # fmt: skip
        assert ret.npoints == len(rc) and ret.feature_dim == 48
        assert {"decode", "crop", "forward", "store"} <= set(ret.timings)
        labels[floc] = [(int(r), int(c), n) for (r, c), n in zip(rc.tolist(), names, strict=True)]
    return labels


@pytest.fixture(scope="module")
def trained(mosaic_set: dict) -> dict:
    labels = _extract_all(mosaic_set)
    split = preprocess_labels(labels, split_mode="points_stratified", split_ratios=(0.15, 0.2))
    root: Location = mosaic_set["root"]
    out = {"labels": labels, "split": split, "root": root}
    for clf_type in ("LR", "MLP"):
        msg = TrainClassifierMsg(
            clf_type=clf_type, nbr_epochs=8, labels=split,
            model_loc=root.join("models", f"{clf_type}.safetensors").url,
            valresult_loc=root.join("models", f"{clf_type}.val.json").url,
            options=TrainOptions(seed=0),
        )  # fmt: skip
        out[clf_type] = train_classifier(msg)
    return out


def test_extracted_features_are_stored_compactly(mosaic_set: dict) -> None:
    labels = _extract_all(mosaic_set)
    f = ImageFeatures.load(next(iter(labels)))
    assert f.features.dtype == np.float16 and f.features.shape == (30, 48)
    assert f.meta["extractor"]["name"] == "dummy"


def test_training_learns_and_reports(trained: dict) -> None:
    for clf_type in ("LR", "MLP"):
        ret = trained[clf_type]
        # six classes: chance is ~0.17; colour statistics separate these photos well
        assert ret.acc > 0.6, (clf_type, ret.acc)
        assert len(ret.ref_accs) == 8
        assert 0 <= ret.ece <= 1 and ret.temperature > 0
        assert len(ret.val_results.gt) == ret.label_counts["val"]
        assert sorted(ret.classes) == sorted({n for v in trained["labels"].values() for *_, n in v})
        vr = Location.parse(ret.model_loc).parent.join(f"{clf_type}.val.json").read_text()
        assert '"gt"' in vr
    clf = load_classifier(trained["MLP"].model_loc)
    assert clf.clf_type == "MLP" and clf.meta["val_acc"] == trained["MLP"].acc


def test_previous_models_scored_on_the_same_validation_set(trained: dict) -> None:
    root = trained["root"]
    msg = TrainClassifierMsg(
        clf_type="LR", nbr_epochs=8, labels=trained["split"],
        previous_model_locs=[trained["LR"].model_loc, trained["MLP"].model_loc],
        model_loc=root.join("models", "again.safetensors").url,
    )  # fmt: skip
    ret = train_classifier(msg)
    assert ret.pc_accs[0] == pytest.approx(trained["LR"].acc)  # same seed, same data
    assert ret.pc_accs[1] == pytest.approx(trained["MLP"].acc)


def test_classify_features_and_image_agree(trained: dict, mosaic_set: dict) -> None:
    floc = next(iter(trained["labels"]))
    model = trained["MLP"].model_loc
    by_features = classify_features(ClassifyFeaturesMsg(feature_loc=floc, classifier_loc=model))
    rowcols = [(r, c) for r, c, _ in trained["labels"][floc]]
    by_image = classify_image(
        ClassifyImageMsg(
            extractor=DUMMY, rowcols=rowcols, image_loc=mosaic_set["images"][0],
            classifier_loc=model,
        )
    )  # fmt: skip
    assert by_features.classes == by_image.classes
    assert len(by_image.scores) == len(rowcols)
    a = np.array([s for *_, s in by_features.scores])
    b = np.array([s for *_, s in by_image.scores])
    np.testing.assert_allclose(a, b, atol=2e-2)  # features were stored as float16
    np.testing.assert_allclose(b.sum(axis=1), 1, rtol=1e-6)
    r, c, s = by_image.scores[3]
    assert by_image.scores_at(r, c) == s


def test_job_catches_each_failure(trained: dict, mosaic_set: dict) -> None:
    root = trained["root"]
    floc = next(iter(trained["labels"]))
    job = JobMsg(
        job_token="j",
        tasks=[
            ClassifyFeaturesMsg(job_token="a", feature_loc=floc, classifier_loc=root.url + "/nope"),
            ExtractFeaturesMsg(
                job_token="b", extractor=DUMMY, rowcols=[(10_000, 1)],
                image_loc=mosaic_set["images"][0], feature_loc=root.url + "/x.npz",
            ),
            ClassifyFeaturesMsg(
                job_token="c", feature_loc=floc, classifier_loc=trained["LR"].model_loc
            ),
        ],
    )  # fmt: skip
    ret = run_job(job)
    assert not ret.ok
    assert [r.ok for r in ret.results] == [False, False, True]
    assert ret.results[0].error_type == "NotFound" and "Traceback" in ret.results[0].traceback
    assert "outside the image" in ret.results[1].error
    assert ret.results[2].result.classes == trained["LR"].classes
    assert JobReturnMsg.from_json(ret.to_json()) == ret


def test_feature_length_mismatch_is_refused(trained: dict, mosaic_set: dict) -> None:
    root = trained["root"]
    other = root.join("features", "other.npz").url
    rc = mosaic_set["points"][0]
    extract_features(
        ExtractFeaturesMsg(
            extractor=ExtractorSpec(name="dummy", patch_size=64, feature_dim=20),
            rowcols=[tuple(p) for p in rc.tolist()], image_loc=mosaic_set["images"][0],
            feature_loc=other,
        )
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="48-d vectors"):
        classify_features(
            ClassifyFeaturesMsg(feature_loc=other, classifier_loc=trained["LR"].model_loc)
        )


class MeanColour(FeatureExtractor):
    """A custom extractor written as one hook."""

    feature_dim = 3

    def patches_to_features(self, patches: np.ndarray) -> np.ndarray:
        return patches.mean(axis=(1, 2))


class WrongShape(FeatureExtractor):
    feature_dim = 4

    def patches_to_features(self, patches: np.ndarray) -> np.ndarray:
        return np.zeros((len(patches), 3))


def test_custom_extractor_by_dotted_path(mosaic_set: dict) -> None:
    root: Location = mosaic_set["root"]
    spec = ExtractorSpec(name=f"{__name__}:MeanColour", patch_size=16, batch_size=7)
    rc = mosaic_set["points"][0]
    extract_features(
        ExtractFeaturesMsg(
            extractor=spec, rowcols=[tuple(p) for p in rc.tolist()],
            image_loc=mosaic_set["images"][0], feature_loc=root.join("c.npz").url,
            feature_dtype="float32",
        )
    )  # fmt: skip
    f = ImageFeatures.load(root.join("c.npz"))
    assert f.features.shape == (30, 3) and f.features.dtype == np.float32
    assert 0 < f.features.mean() < 255
    bad = ExtractorSpec(name=f"{__name__}:WrongShape", patch_size=16)
    with pytest.raises(InvalidInput, match="expected"):
        extract_features(
            ExtractFeaturesMsg(
                extractor=bad, rowcols=[(1, 1)], image_loc=mosaic_set["images"][0],
                feature_loc=root.join("d.npz").url,
            )
        )  # fmt: skip


def test_hostile_images_and_limits(mem_root: Location, monkeypatch: pytest.MonkeyPatch) -> None:
    junk = mem_root / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff" + b"\x00" * 100)
    msg = ExtractFeaturesMsg(
        extractor=DUMMY, rowcols=[(1, 1)], image_loc=junk.url, feature_loc=(mem_root / "f.npz").url
    )
    with pytest.raises(InvalidInput):
        extract_features(msg)
    from tests.points.mosaic import png_bytes

    img = mem_root / "img.png"
    img.write_bytes(png_bytes(np.zeros((40, 50, 3), np.uint8)))
    monkeypatch.setenv("ANNOLOOP_POINTS_MAX_POINTS", "3")
    many = msg.model_copy(update={"image_loc": img.url, "rowcols": [(1, 1)] * 4})
    with pytest.raises(InvalidInput, match="more than the limit of 3"):
        extract_features(many)
    monkeypatch.setenv("ANNOLOOP_MAX_IMAGE_PIXELS", "100")
    with pytest.raises(InvalidInput, match="decompression bomb"):
        extract_features(msg.model_copy(update={"image_loc": img.url}))


def test_thousand_points_on_a_large_image(mem_root: Location) -> None:
    import simplejpeg

    rng = np.random.default_rng(0)
    ramp = (np.arange(2000) % 256).astype(np.uint8)
    big = np.ascontiguousarray(np.broadcast_to(ramp[None, :, None], (1500, 2000, 3)))
    loc = mem_root / "big.jpg"
    loc.write_bytes(simplejpeg.encode_jpeg(big, quality=80))
    rc = np.stack([rng.integers(0, 1500, 1000), rng.integers(0, 2000, 1000)], 1)
    ret = extract_features(
        ExtractFeaturesMsg(
            extractor=ExtractorSpec(name="dummy", patch_size=224, batch_size=64),
            rowcols=[tuple(p) for p in rc.tolist()], image_loc=loc.url,
            feature_loc=(mem_root / "big.npz").url,
        )
    )  # fmt: skip
    assert ret.npoints == 1000


def test_importing_the_training_task_leaves_the_extractors_alone() -> None:
    import subprocess
    import sys

    import annoloop.points as points

    code = (
        "import sys\n"
        "from annoloop.points import TrainClassifierMsg, TrainingLabels, train_classifier\n"
        "heavy = [m for m in ('annoloop.points.extractors', 'annoloop.points.settings',\n"
        "         'pydantic_settings', 'torch', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # every exported name still resolves, and dir() lists them
    assert all(getattr(points, name) is not None for name in points.__all__)
    assert set(points.__all__) <= set(dir(points))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = points.nope


@pytest.mark.parametrize("part", ["train", "ref", "val"])
def test_a_nan_feature_vector_is_refused_with_its_file_and_point(trained: dict, part: str) -> None:
    """A NaN would turn every weight it touches into NaN (or every score, in validation): the
    task names the file and the point instead of storing a broken classifier."""
    split = trained["split"]
    sets = {k: dict(getattr(split, k)) for k in ("train", "ref", "val")}
    loc, anns = next((loc, a) for loc, a in sets[part].items() if a)
    r, c = anns[-1][:2]
    feats = ImageFeatures.load(loc)
    bad = feats.features.astype(np.float32)
    bad[int(np.flatnonzero((feats.rows == r) & (feats.cols == c))[0]), 5] = np.nan
    broken = trained["root"].join("features", f"nan-{part}.npz").url
    ImageFeatures(feats.rows, feats.cols, bad).save(broken, dtype="float32")
    sets[part] = {broken if k == loc else k: v for k, v in sets[part].items()}
    model = trained["root"].join("models", f"nan-{part}.safetensors")
    msg = TrainClassifierMsg(clf_type="MLP", nbr_epochs=2, labels=sets, model_loc=model.url)
    with pytest.raises(InvalidInput, match=rf"nan-{part}\.npz: the feature vector at point "
                       rf"\({r}, {c}\) holds NaN or infinity"):  # fmt: skip
        train_classifier(msg)
    assert not model.exists()  # nothing half-written
    clf = load_classifier(trained["MLP"].model_loc)
    with pytest.raises(InvalidInput, match="feature vector 0 holds NaN or infinity"):
        clf.predict_proba(np.full((1, 48), np.nan))
