"""What the CPU can do, for the tests of the bfloat16 kernels and the trainer's precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annoloop.points import bf16


def cpu_has_bf16() -> bool:
    """True where Linux lists AVX512-BF16 among this CPU's flags (independent of annoloop's
    own CPUID check, which the tests hold it to)."""
    try:
        return "avx512_bf16" in Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux
        return False


# The kernels need the CPU feature; where it is missing these tests cannot run at all.
# test_training.py's test_bf16_kernels_run_where_the_cpu_has_them keeps this from hiding a
# broken build on a CPU that has it.
needs_bf16 = pytest.mark.skipif(not bf16.available(), reason="no AVX512-BF16 on this CPU")


def round_bf16(x: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (to nearest even), as float32."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)
