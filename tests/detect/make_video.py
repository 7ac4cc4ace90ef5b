"""Make the test video: pan/zoom crops of the bundled astronaut photo, the face moving,
encoded with PyAV (the generator lives in :mod:`annoloop.detect.synthetic`, shared with the
demo and the benchmarks). Tests make it into a temporary folder; nothing binary is committed.

    python tests/detect/make_video.py OUT.mp4 [frames] [width] [height]
"""

from __future__ import annotations

import sys

from annoloop.detect.synthetic import frames, make_video, truncate

__all__ = ["frames", "make_video", "truncate"]

if __name__ == "__main__":
    args = sys.argv[1:]
    target = args[0] if args else "astronaut_pan.mp4"
    sizes = [int(a) for a in args[1:4]]
    print(make_video(target, *sizes))
