"""iquaflow 1.0.1's own JPEG modifier on a dataset folder (runs in the iquaflow environment).

    IQF_PYTHON bench/experiments/iquaflow_jpeg.py DATASET QUALITY

Prints one JSON line: seconds and CPU seconds of
``DSWrapper(data_path=DATASET).modify(DSModifier_jpg(...))``, and the output folder.
iquaflow.datasets imports torchvision; where torchvision's compiled ops do not load (a CPU
torch beside the CUDA torchvision wheel), ``torchvision::nms`` is declared first so that the
import succeeds (the JPEG modifier never calls it).
"""

from __future__ import annotations

import json
import sys
import time


def _torchvision_importable() -> None:
    import torch

    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _torchvision_importable.lib = lib  # type: ignore[attr-defined]  # keep it alive


def main() -> None:
    data_path, quality = sys.argv[1], int(sys.argv[2])
    _torchvision_importable()
    from iquaflow.datasets import DSModifier_jpg, DSWrapper

    start, cpu = time.perf_counter(), time.process_time()
    wrapper = DSWrapper(data_path=data_path)
    modified = wrapper.modify(DSModifier_jpg(params={"quality": quality}))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "output": modified.data_path}))


if __name__ == "__main__":
    main()
