"""Media sources for detection: still images and videos, decoded into RGB frames.

A source is an image file or a video file (decoded with PyAV). :func:`iter_frames` yields
:class:`Frame` objects; :func:`prefetch` runs any iterator in a thread that feeds a bounded
queue, so that decoding and pre-processing overlap inference.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from annoloop.errors import InvalidInput, MissingDependency
from annoloop.storage import Location

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})


@dataclass
class Frame:
    """One decoded frame: its index in the media (0 for images), RGB pixels (H, W, 3) uint8
    at the size the detector sees, and the factor from original to those pixels."""

    index: int
    pixels: np.ndarray
    width: int  # original size
    height: int
    scale: float


def is_video(location: str | Location) -> bool:
    """Whether a location names a video (by its suffix)."""
    return Location.parse(location).suffix.lower() in VIDEO_SUFFIXES


def resize_factor(width: int, height: int, min_side: int | None, max_side: int | None) -> float:
    """The factor that brings the short side to ``min_side`` without the long side passing
    ``max_side`` (torchvision's GeneralizedRCNNTransform rule); 1.0 when neither is set."""
    short, long = min(width, height), max(width, height)
    scale = 1.0
    if min_side:
        scale = min_side / short
    if max_side and long * scale > max_side:
        scale = max_side / long
    return float(scale)


def resize(pixels: np.ndarray, scale: float) -> np.ndarray:
    """Pixels resized by ``scale`` (bilinear; unchanged when the factor is ~1)."""
    if abs(scale - 1.0) < 1e-3:
        return pixels
    from PIL import Image

    h, w = pixels.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.BILINEAR))


def _prepared(index: int, pixels: np.ndarray, min_side: int | None, max_side: int | None) -> Frame:
    h, w = pixels.shape[:2]
    scale = resize_factor(w, h, min_side, max_side)
    return Frame(index, resize(pixels, scale), w, h, scale)


def iter_frames(
    location: str | Location,
    *,
    frame_stride: int = 1,
    min_side: int | None = None,
    max_side: int | None = None,
) -> Iterator[Frame]:
    """Frames of an image (one) or a video (every ``frame_stride``-th), resized for the
    detector. Raises InvalidInput naming the file when it cannot be decoded."""
    loc = Location.parse(location)
    if frame_stride < 1:
        raise InvalidInput(f"frame_stride must be >= 1, got {frame_stride}", "frame_stride")
    if not is_video(loc):
        from annoloop.storage import read_image

        yield _prepared(0, read_image(loc), min_side, max_side)
        return
    yield from _video_frames(loc, frame_stride, min_side, max_side)


def _video_frames(
    loc: Location, stride: int, min_side: int | None, max_side: int | None
) -> Iterator[Frame]:
    try:
        import av
    except ImportError:  # pragma: no cover - av is installed with the video extra
        raise MissingDependency("av", "video") from None
    path = loc.local_path()
    handle: Any = str(path) if path is not None else loc.open("rb")
    try:
        container = av.open(handle)
    except Exception as exc:  # av raises many error types for broken files
        raise InvalidInput(f"cannot open video ({type(exc).__name__}: {exc})", loc.url) from None
    decoded = 0
    try:
        if not container.streams.video:
            raise InvalidInput("the file has no video stream", loc.url)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # codec threads: decoding keeps up with inference
        try:
            for index, frame in enumerate(container.decode(stream)):
                decoded += 1
                if index % stride:
                    continue
                yield _prepared(index, frame.to_ndarray(format="rgb24"), min_side, max_side)
        except InvalidInput:
            raise
        except Exception as exc:
            raise InvalidInput(
                f"video decoding failed after {decoded} frames ({type(exc).__name__}: {exc})",
                loc.url,
            ) from None
        if decoded == 0:
            raise InvalidInput("the video holds no decodable frame", loc.url)
    finally:
        container.close()


def video_info(location: str | Location) -> dict[str, Any]:
    """Width, height, frame count (as the container states it, 0 if unknown) and rate."""
    import av

    loc = Location.parse(location)
    path = loc.local_path()
    try:
        with av.open(str(path) if path is not None else loc.open("rb")) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate) if stream.average_rate else 0.0
            return {
                "width": int(stream.codec_context.width),
                "height": int(stream.codec_context.height),
                "frames": int(stream.frames or 0),
                "fps": rate,
            }
    except Exception as exc:
        msg = f"cannot read video header ({type(exc).__name__}: {exc})"
        raise InvalidInput(msg, loc.url) from None


_DONE = object()


def prefetch(items: Iterable[Any], size: int = 16) -> Iterator[Any]:
    """Iterate ``items`` in a background thread through a queue of ``size``: the consumer
    (inference) runs while the producer (decode, resize) prepares what comes next. An
    exception of the producer is raised in the consumer at the point it happened."""
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, size))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            q.put(_Failure(exc))

    thread = threading.Thread(target=produce, name="annoloop-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


@dataclass
class _Failure:
    exc: BaseException


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of up to ``size`` consecutive items."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
