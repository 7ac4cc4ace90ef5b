"""Settings of annoloop.points, read from ``ANNOLOOP_*`` environment variables.

=============================  =========  =================================================
variable                       default    meaning
=============================  =========  =================================================
ANNOLOOP_DEVICE                auto       torch device for extractors (auto = CUDA if present)
ANNOLOOP_TORCH_THREADS         0          torch CPU threads (0 = torch's own choice)
ANNOLOOP_POINTS_BATCH_SIZE     16         patches per forward pass
ANNOLOOP_POINTS_RUNTIME        auto       torch, onnx (ONNX Runtime, CPU), openvino (CPU) or
                                          auto (openvino for bfloat16 on the CPU, onnx for
                                          float32 and int8 on the CPU, else torch)
ANNOLOOP_POINTS_PRECISION      auto       float32, bfloat16 (openvino, torch), float16
                                          (torch, CUDA), int8 (onnx) or auto (bfloat16 where
                                          the CPU has it in hardware and OpenVINO is
                                          installed, else float32)
ANNOLOOP_POINTS_ONNX_CACHE     (empty)    folder of converted ONNX models (empty:
                                          $XDG_CACHE_HOME/annoloop/onnx)
ANNOLOOP_POINTS_PATCH_SIZE     224        side of the square patch cropped at each point
ANNOLOOP_POINTS_MAX_POINTS     10000      most points per image in one message
ANNOLOOP_POINTS_FEATURE_DTYPE  float16    how feature files store vectors (float16/float32)
=============================  =========  =================================================
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from annoloop.errors import InvalidInput


class PointsSettings(BaseSettings):
    """Run-time settings of feature extraction and classification (see the module table)."""

    model_config = SettingsConfigDict(env_prefix="ANNOLOOP_", extra="ignore")

    device: str = "auto"
    torch_threads: int = Field(0, ge=0)
    points_batch_size: int = Field(16, ge=1, le=4096)
    points_runtime: Literal["auto", "torch", "onnx", "openvino"] = "auto"
    points_precision: Literal["auto", "float32", "bfloat16", "float16", "int8"] = "auto"
    points_onnx_cache: str = ""
    points_patch_size: int = Field(224, ge=8, le=4096)
    points_max_points: int = Field(10_000, ge=1)
    points_feature_dtype: Literal["float16", "float32"] = "float16"


def get_settings() -> PointsSettings:
    """The settings now in force (the environment is read on each call)."""
    try:
        return PointsSettings()
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "ANNOLOOP_" + str(err["loc"][0]).upper() if err.get("loc") else "ANNOLOOP_*"
        raise InvalidInput(
            f"{err['msg']} (got {err.get('input')!r})", f"environment {name}"
        ) from None
