"""Finding models by name: built-ins, dotted paths, modules, errors; the catalog services."""

from __future__ import annotations

import subprocess
import sys

import pytest

from annoloop.ai import service
from annoloop.ai.registry import BUILTIN_MODELS, get_model, get_model_class, list_models
from annoloop.errors import InvalidInput, NotFound
from tests.ai.toy_models import NearestCentroid


def test_builtins_are_listed_first() -> None:
    names = list_models()
    assert names[: len(BUILTIN_MODELS)] == list(BUILTIN_MODELS)
    assert {"image-classifier", "point-classifier", "detector", "onnx-detector"} <= set(names)


def test_builtin_classes_load_without_torch_import() -> None:
    code = (
        "import sys\n"
        "from annoloop.ai.registry import get_model_class\n"
        "import annoloop.ai.service, annoloop.ai.rankers, annoloop.ai.simulation\n"
        "cls = get_model_class('image-classifier')\n"
        "assert cls.info.name == 'image-classifier' and cls.info.can_add_classes\n"
        "assert get_model_class('point-classifier').info.predicts == 'point'\n"
        "heavy = [m for m in ('torch', 'dask', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_dotted_paths_and_modules() -> None:
    assert get_model_class("tests.ai.toy_models:NearestCentroid") is NearestCentroid
    assert get_model_class("tests.ai.toy_models.NearestCentroid") is NearestCentroid
    model = get_model("tests.ai.toy_models:NearestCentroid", {"image_size": 4})
    assert model.options["image_size"] == 4
    # a module holding several models: the one whose info.name matches, else an error
    with pytest.raises(NotFound, match="holds 3 model classes"):
        get_model_class("tests.ai.toy_models")


def test_bad_names() -> None:
    with pytest.raises(NotFound, match="unknown model 'nope'"):
        get_model_class("nope")
    with pytest.raises(NotFound, match="cannot load"):
        get_model_class("tests.ai.no_such_module:Model")
    with pytest.raises(InvalidInput, match="not a subclass"):
        get_model_class("tests.ai.datasets:write_digits")
    with pytest.raises(InvalidInput):
        get_model_class("   ")
    with pytest.raises(InvalidInput, match="image_size"):
        get_model("image-classifier", {"image_size": 2})


def test_catalog_services() -> None:
    rows = {r["name"]: r for r in service.list_model_infos()}
    assert rows["image-classifier"]["available"] is True
    assert rows["image-classifier"]["accepts"] == ["label"]
    for row in rows.values():  # a model that cannot load is listed with its error
        assert row["available"] or row["error"]
    shown = service.show_model("point-classifier")
    assert shown["default_options"]["clf_type"] == "MLP"
    assert "patch_size" in shown["options_schema"]["properties"]
    report = service.verify_model_options("image-classifier", {"head": "forest", "x": 1})
    assert not report.valid
    assert report.errors[0].startswith("head:")
    assert report.warnings == ["unknown option 'x' ignored"]
    assert (
        service.verify_model_options("image-classifier", {"epochs": "7"}).corrected["epochs"] == 7
    )
