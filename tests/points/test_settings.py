"""Settings from ANNOLOOP_* environment variables."""

from __future__ import annotations

import pytest

from annoloop.errors import InvalidInput
from annoloop.points.settings import get_settings


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANNOLOOP_POINTS_BATCH_SIZE", "ANNOLOOP_DEVICE", "ANNOLOOP_TORCH_THREADS"):
        monkeypatch.delenv(name, raising=False)
    s = get_settings()
    assert s.points_batch_size == 16 and s.device == "auto" and s.torch_threads == 0
    monkeypatch.setenv("ANNOLOOP_POINTS_BATCH_SIZE", "48")
    monkeypatch.setenv("ANNOLOOP_TORCH_THREADS", "2")
    monkeypatch.setenv("ANNOLOOP_POINTS_PRECISION", "bfloat16")
    s = get_settings()
    assert (s.points_batch_size, s.torch_threads, s.points_precision) == (48, 2, "bfloat16")


@pytest.mark.parametrize(
    ("name", "value"),
    [("ANNOLOOP_POINTS_BATCH_SIZE", "many"), ("ANNOLOOP_POINTS_BATCH_SIZE", "0"),
     ("ANNOLOOP_POINTS_PRECISION", "int4")],
)  # fmt: skip
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidInput, match=name):
        get_settings()
