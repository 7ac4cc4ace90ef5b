"""Active-learning simulation on scikit-learn's digits (1797 labelled 8 x 8 images).

The image classifier (raw pixels, linear head) is retrained from scratch every round;
each strategy starts from the same random labelled images and labels ``batch`` more per
round. Prints how many labels each strategy needs to reach random sampling's final test
accuracy and writes curves (CSV, PNG) to ``bench/ai/out/digits``.

    python bench/ai/al_digits.py [--repeats 3] [--rounds 15]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from annoloop.ai.sample_data import write_digits
from annoloop.ai.service import simulate_al

STRATEGIES = (
    "random",
    "least-confidence",
    "margin",
    "entropy",
    "margin+kcenter",
    "entropy+kcenter",
    "kcenter",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--initial", type=int, default=20)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "digits")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = write_digits(Path(tmp))
        start = time.perf_counter()
        result = simulate_al(
            data,
            "image-classifier",
            {"backbone": "pixels", "image_size": 8, "epochs": 40},
            strategies=STRATEGIES,
            initial=args.initial,
            batch=args.batch,
            rounds=args.rounds,
            repeats=args.repeats,
            out_dir=args.out,
        )
        took = time.perf_counter() - start
    summary = result.summary()
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\n{len(data.images)} digits, {args.repeats} repeats, {took:.0f} s; files in {args.out}")


if __name__ == "__main__":
    main()
