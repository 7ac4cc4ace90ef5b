"""The one compiled part of annoloop: bfloat16 products for the point MLP (optional).

Everything else is configured in pyproject.toml. Without a C compiler the build skips the
extension (``optional=True``) and the trainer uses float32 numpy instead.
"""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "annoloop.points._bf16",
            ["src/annoloop/points/_bf16.c"],
            # vectorised sqrtf needs no errno; no fused multiply-adds, so the compiled AdamW
            # gives the numpy update's bits
            extra_compile_args=[]
            if sys.platform == "win32"
            else ["-O3", "-fno-math-errno", "-ffp-contract=off"],
            optional=True,
        )
    ]
)
