"""The Metric base class, a custom metric by subclassing, and finding metrics by name."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annoloop.errors import InvalidInput, NotFound
from annoloop.metrics import ImageMetric, Metric, get_metric, get_metric_class, list_metrics


class MeanAbsoluteError(Metric):
    """The example of the base module's docstring."""

    name = "mae"
    higher_is_better = False

    def _compute(self, prediction: Any, target: Any) -> dict[str, Any]:
        diff = np.abs(np.asarray(prediction, float) - np.asarray(target, float))
        return {"mae": diff.mean(), "max": np.max(diff)}


class MeanBrightness(ImageMetric):
    name = "brightness"

    def measure(self, image: np.ndarray) -> dict[str, float]:
        return {"brightness": float(image.mean()), "only_colour": np.nan if image.ndim == 2 else 1}


def test_custom_metric_by_subclassing() -> None:
    metric = MeanAbsoluteError()
    result = metric.compute([1, 2, 3], [1, 2, 5])
    assert result == {"mae": pytest.approx(2 / 3), "max": 2.0}
    assert all(type(v) is float for v in result.values())  # numpy scalars became floats
    assert not metric.is_higher_better("mae")
    with pytest.raises(InvalidInput, match="metric 'mae' needs a target"):
        metric.compute([1, 2])
    assert repr(metric) == "MeanAbsoluteError(name='mae')"


def test_image_metric_averages_over_images() -> None:
    grey = np.full((4, 4), 10.0)
    colour = np.full((4, 4, 3), 30.0)
    out = MeanBrightness().compute([grey, colour])
    assert out == {"brightness": 20.0, "only_colour": 1.0, "n_images": 2.0}  # NaN skipped
    with pytest.raises(InvalidInput, match="empty list of images"):
        MeanBrightness().compute([])
    with pytest.raises(InvalidInput, match="takes an image, a path or a list"):
        MeanBrightness().compute(42)
    with pytest.raises(InvalidInput, match=r"images\[1\]: expected an image array or a path"):
        MeanBrightness().compute([grey, 3])


def test_bad_hook_results_are_caught() -> None:
    class Broken(Metric):
        name = "broken"
        needs_target = False

        def __init__(self, value: Any) -> None:
            self.value = value

        def _compute(self, prediction: Any, target: Any) -> Any:
            return self.value

    with pytest.raises(InvalidInput, match="returned list, not a mapping"):
        Broken([1]).compute(None)
    with pytest.raises(InvalidInput, match="returned str for 'a', not a number"):
        Broken({"a": "high"}).compute(None)
    with pytest.raises(InvalidInput, match="returned bool"):
        Broken({"a": True}).compute(None)
    with pytest.raises(InvalidInput, match="non-string key 1"):
        Broken({1: 1.0}).compute(None)


def test_builtins_are_listed_and_found() -> None:
    names = list_metrics()
    assert {"coco_detection", "classification", "segmentation", "snr", "sharpness"} <= set(names)
    for name in ("coco_detection", "classification", "segmentation", "snr", "sharpness"):
        metric = get_metric(name)
        assert isinstance(metric, Metric) and metric.name == name
    assert get_metric("snr", method="ha").method == "HA"


def test_dotted_paths_and_errors() -> None:
    path = f"{__name__}.MeanAbsoluteError"
    assert get_metric_class(path) is MeanAbsoluteError
    assert get_metric_class(f"{__name__}:MeanAbsoluteError") is MeanAbsoluteError
    assert get_metric(path).compute([0, 2], [0, 0])["mae"] == 1.0
    with pytest.raises(NotFound, match="unknown metric 'nope'; known: classification"):
        get_metric("nope")
    with pytest.raises(NotFound, match="cannot import module"):
        get_metric("no_such_package.Metric")
    with pytest.raises(NotFound, match="has no 'Missing'"):
        get_metric(f"{__name__}.Missing")
    with pytest.raises(InvalidInput, match=r"is not a subclass of annoloop\.metrics\.Metric"):
        get_metric("numpy.ndarray")
    with pytest.raises(InvalidInput, match="bad options for metric 'classification'"):
        get_metric("classification", colour="red")
    with pytest.raises(InvalidInput, match="unknown SNR method"):
        get_metric("snr", method="magic")
    with pytest.raises(InvalidInput, match=r"unknown option.* lbp_threshold for snr method HB"):
        get_metric("snr", lbp_threshold=0.5)  # an HA option
    assert get_metric("snr", method="HA", lbp_threshold=0.5).options == {"lbp_threshold": 0.5}
    with pytest.raises(InvalidInput, match=r"unknown option.* blur for sharpness; accepted"):
        get_metric("sharpness", blur=2)


def test_entry_point_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a real installed-looking plug-in: a module and a dist-info with an entry point
    (tmp_path / "annoloop_test_plugin.py").write_text(
        textwrap.dedent(
            """
            from annoloop.metrics import Metric

            class Agreement(Metric):
                name = "agreement"

                def _compute(self, prediction, target):
                    same = [p == t for p, t in zip(prediction, target)]
                    return {"agreement": sum(same) / len(same)}
            """
        )
    )
    info = tmp_path / "annoloop_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: annoloop-test-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[annoloop.metrics]\nagreement = annoloop_test_plugin:Agreement\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        assert "agreement" in list_metrics()
        assert get_metric("agreement").compute(["a", "b", "c", "d"], ["a", "b", "x", "d"]) == {
            "agreement": 0.75
        }
    finally:
        sys.modules.pop("annoloop_test_plugin", None)
