"""Shared fixtures: the generated pan video and a truncated (corrupt) copy of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.detect.make_video import make_video, truncate


@pytest.fixture(scope="session")
def pan_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames, 192x144, the astronaut's face moving."""
    return make_video(tmp_path_factory.mktemp("video") / "astronaut_pan.mp4", 12, 192, 144)


@pytest.fixture(scope="session")
def broken_video(pan_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pan video cut after 40 % of its bytes."""
    return truncate(pan_video, tmp_path_factory.mktemp("broken") / "broken.mp4")
