"""Decoding images and videos, resizing, the prefetch thread, broken files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from annoloop.detect.media import (
    batched,
    is_video,
    iter_frames,
    prefetch,
    resize_factor,
    video_info,
)
from annoloop.errors import InvalidInput
from annoloop.samples import photo_path


def test_video_frames_and_stride(pan_video: Path) -> None:
    info = video_info(pan_video)
    assert (info["width"], info["height"]) == (192, 144)
    frames = list(iter_frames(pan_video))
    assert [f.index for f in frames] == list(range(12))
    assert frames[0].pixels.shape == (144, 192, 3) and frames[0].pixels.dtype == np.uint8
    strided = list(iter_frames(pan_video, frame_stride=5, min_side=72))
    assert [f.index for f in strided] == [0, 5, 10]
    assert strided[0].pixels.shape == (72, 96, 3) and strided[0].scale == pytest.approx(0.5)
    # the face moves: consecutive frames differ
    assert np.abs(frames[0].pixels.astype(int) - frames[-1].pixels).mean() > 10


def test_still_image_is_one_frame() -> None:
    (frame,) = iter_frames(photo_path("astronaut.png"), max_side=256)
    assert frame.index == 0 and frame.pixels.shape == (256, 256, 3)
    assert (frame.width, frame.height) == (512, 512)


def test_resize_factor_rules() -> None:
    assert resize_factor(640, 480, 240, None) == pytest.approx(0.5)
    assert resize_factor(1000, 100, 200, 1000) == pytest.approx(1.0)  # capped by the long side
    assert resize_factor(300, 200, None, None) == 1.0


def test_truncated_video_raises_naming_the_file(broken_video: Path) -> None:
    with pytest.raises(InvalidInput, match=r"broken\.mp4"):
        list(iter_frames(broken_video))


def test_hostile_video_files(tmp_path: Path) -> None:
    garbage = tmp_path / "noise.mp4"
    garbage.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(InvalidInput, match=r"noise\.mp4"):
        list(iter_frames(garbage))
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInput):
        list(iter_frames(empty))
    with pytest.raises(InvalidInput, match="frame_stride"):
        list(iter_frames(garbage, frame_stride=0))
    assert is_video("x/y.MOV") and not is_video("x/y.png")


def test_prefetch_overlaps_and_propagates_errors() -> None:
    def slow(n: int):
        for i in range(n):
            time.sleep(0.02)
            yield i

    start = time.perf_counter()
    out = []
    for item in prefetch(slow(10), 4):
        time.sleep(0.02)  # the consumer works while the producer makes the next item
        out.append(item)
    assert out == list(range(10))
    assert time.perf_counter() - start < 0.4 * 1.9  # not the 0.4 s of running in turn

    def failing():
        yield 1
        raise InvalidInput("boom at frame 2", "video")

    got = []
    with pytest.raises(InvalidInput, match="boom"):
        for item in prefetch(failing()):
            got.append(item)
    assert got == [1]
    # a consumer that stops early does not leave the producer blocked
    first = next(iter(prefetch(slow(100), 2)))
    assert first == 0
    assert [len(b) for b in batched(range(7), 3)] == [3, 3, 1]
