"""`import annoloop` must stay fast: no torch, dask, pandas or fastapi at package import."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "torchvision", "dask", "distributed", "pandas", "fastapi", "mlflow", "sqlalchemy")


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    ).stderr


def test_import_annoloop_is_fast_and_light() -> None:
    # -X importtime reports cumulative microseconds per module; take the best of three runs so a
    # busy machine does not make the guard flaky, and check no heavy module is imported at all.
    best = None
    for _ in range(3):
        log = _run("import annoloop")
        modules = {line.split("|")[-1].strip() for line in log.splitlines()[1:]}
        heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
        assert heavy == [], f"import annoloop pulled in {heavy}"
        total = max(int(line.split("|")[1]) for line in log.splitlines()[1:] if "annoloop" in line)
        best = total if best is None else min(best, total)
    assert best < 300_000, f"import annoloop took {best / 1000:.0f} ms (limit 300 ms)"


def test_core_modules_do_not_import_optional_heavy_dependencies() -> None:
    code = (
        "import sys; import annoloop.geometry, annoloop.formats, annoloop.config, annoloop.errors;"
        "print(','.join(m for m in ('torch','dask','fastapi','mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_package_names_are_imported_on_first_use() -> None:
    """annoloop.lazy: a package's public names load their module only when first touched."""
    code = (
        "import sys, annoloop.points as p, annoloop.pipeline as pl\n"
        "before = 'annoloop.points.extractors' in sys.modules\n"
        "spec = p.ExtractorSpec\n"  # messages only
        "after_spec = 'annoloop.points.extractors' in sys.modules\n"
        "p.get_extractor\n"
        "print(before, after_spec, 'annoloop.points.extractors' in sys.modules,\n"
        "      'get_extractor' in vars(p), 'run_pipe' in dir(pl), spec.__module__)\n"
        "try:\n    p.no_such_name\nexcept AttributeError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, second = out.stdout.strip().splitlines()
    assert first == "False False True True True annoloop.points.messages"
    assert second == "module 'annoloop.points' has no attribute 'no_such_name'"
