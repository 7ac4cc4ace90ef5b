"""Detection over image and video collections (OpenEM's Tator workflow as a library).

``run(detector, sources, ...)`` runs a detector (MTCNN faces, an ONNX file, a user's
torchvision weights, a ``detector`` state trained in the project) over images and videos,
links video boxes into tracks, writes CSV / COCO and stores the boxes in the project as
predictions, stamping each media. The stages are importable on their own
(:mod:`annoloop.detect.workflow`: ``setup``, ``teardown``; :mod:`annoloop.detect.worker`:
``detect_media``; :func:`run_media`, one executor task per media), as pipeline scripts
(:mod:`annoloop.detect.pipe_script`, template ``detect.yaml``) and against an annoloop server
(:mod:`annoloop.detect.remote`: ``run(..., server=URL, token=KEY)``, :class:`RemoteProject`).
Importing this package imports neither torch nor httpx.
"""

from annoloop.detect.detectors import DetectorSpec, load_detector, parse_detector
from annoloop.detect.remote import RemoteProject
from annoloop.detect.results import MediaResult, Timings
from annoloop.detect.run import run, run_media
from annoloop.detect.settings import STAMP_KEY, DetectSettings
from annoloop.detect.tracking import track_boxes
from annoloop.detect.worker import MediaItem, detect_media
from annoloop.detect.workflow import DetectReport, setup, teardown

__all__ = [
    "STAMP_KEY",
    "DetectReport",
    "DetectSettings",
    "DetectorSpec",
    "MediaItem",
    "MediaResult",
    "RemoteProject",
    "Timings",
    "detect_media",
    "load_detector",
    "parse_detector",
    "run",
    "run_media",
    "setup",
    "teardown",
    "track_boxes",
]
