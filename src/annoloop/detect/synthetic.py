"""A generated video for tests, the demo and benchmarks: pan/zoom crops of the bundled
astronaut photo, so the face moves across the frame, encoded with PyAV (libx264 when
present, else mpeg4); and a truncated (corrupt) copy of a video."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def frames(n: int = 24, width: int = 256, height: int = 192) -> list[np.ndarray]:
    """``n`` RGB frames: a window over astronaut.png that pans right and zooms in."""
    from PIL import Image

    from annoloop.samples import photo_path

    photo = Image.open(photo_path("astronaut.png")).convert("RGB")  # 512 x 512
    out = []
    for i in range(n):
        t = i / max(1, n - 1)
        crop_w = 400 - 100 * t  # zoom in
        crop_h = crop_w * height / width
        x0 = 10 + 90 * t  # pan: the face (x 180..270, y 60..170) moves left in the frame
        y0 = 20 + 10 * t
        box = (x0, y0, x0 + crop_w, y0 + crop_h)
        out.append(np.asarray(photo.resize((width, height), Image.BILINEAR, box=box)))
    return out


def make_video(
    path: str | Path, n: int = 24, width: int = 256, height: int = 192, fps: int = 12
) -> Path:
    """Encode :func:`frames` to ``path``; returns the path."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(_codec(), rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for pixels in frames(n, width, height):
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncate(path: str | Path, out: str | Path, keep: float = 0.4) -> Path:
    """A corrupt copy of a video: only the first ``keep`` share of its bytes."""
    data = Path(path).read_bytes()
    out = Path(out)
    out.write_bytes(data[: int(len(data) * keep)])
    return out
