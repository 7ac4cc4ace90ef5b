"""Active-learning simulation for point labels on bundled photos.

Mosaics of 2 x 3 tiles cut from six bundled photos (``annoloop.ai.sample_data``); each point
is labelled with the photo its tile comes from. The point classifier (pretrained MobileNetV2
features of a patch at each point, logistic regression) is retrained every round. With
``--unit annotation`` (the default, as CoralNet surveyors work) a strategy picks single
points by their uncertainty; with ``--unit image`` it picks whole images (all their points get
labelled), ranked by the mean uncertainty of their points. Labels are counted in points.
Writes curves to ``bench/ai/out/points-<unit>``.

    python bench/ai/al_points.py [--unit annotation|image] [--images 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from annoloop.ai.sample_data import write_point_mosaics
from annoloop.ai.service import simulate_al

STRATEGIES = ("random", "least-confidence", "margin", "entropy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--unit", choices=("annotation", "image"), default="annotation")
    parser.add_argument("--initial", type=int, default=None, help="default: 20 points / 2 images")
    parser.add_argument("--batch", type=int, default=None, help="default: 20 points / 2 images")
    parser.add_argument("--rounds", type=int, default=None, help="default: 20 / 10")
    parser.add_argument("--extractor", default="mobilenet_v2")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    by_point = args.unit == "annotation"
    initial = args.initial or (20 if by_point else 2)
    batch = args.batch or (20 if by_point else 2)
    rounds = args.rounds or (20 if by_point else 10)
    out = args.out or Path(__file__).parent / "out" / f"points-{args.unit}"
    strategies = STRATEGIES if by_point else (*STRATEGIES, "margin+kcenter")
    with tempfile.TemporaryDirectory() as tmp:
        data = write_point_mosaics(Path(tmp), args.images, args.points, tile=96)
        start = time.perf_counter()
        result = simulate_al(
            data,
            "point-classifier",
            {"extractor": args.extractor, "patch_size": 32, "clf_type": "LR", "ref_fraction": 0},
            strategies=strategies,
            initial=initial,
            batch=batch,
            rounds=rounds,
            repeats=args.repeats,
            unit=args.unit,
            out_dir=out,
        )
        took = time.perf_counter() - start
    print(result.summary().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"\n{args.images} mosaics x {args.points} points, {args.repeats} repeats, {took:.0f} s; "
        f"unit {args.unit}; files in {out}"
    )


if __name__ == "__main__":
    main()
