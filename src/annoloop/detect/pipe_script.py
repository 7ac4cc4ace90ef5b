"""The detection workflow as pipeline scripts: OpenEM's three stages as three script elements
of the template ``detect.yaml`` (datasource -> setup -> worker -> teardown).

- :class:`DetectSetup` takes the datasources' images minus those already stamped by the
  detector and writes the plan (detector spec, settings, media list) to the pipe's folder;
- :class:`DetectWorker` runs :func:`~annoloop.detect.worker.detect_media` with one media per
  executor task and writes each media's result to a file of the pipe as it finishes (a run
  that lost its worker keeps the results already written);
- :class:`DetectTeardown` reads the plan and the results, stores the boxes as predictions and
  stamps each media (one transaction), writes CSV and COCO into its folder, and logs every
  media that failed (the others are stored; a failed media is tried again next run).

The stages talk through files under ``get_location(FOLDER/ITERATION, context="pipe")``:
``plan.json`` (and ``detector.bin`` for a state detector's bytes) and ``results/NNNNN.json``.
:class:`DetectScript` runs all three in one element (templates written before the split).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from annoloop.pipeline import Script

# ARGUMENTS stay literal dicts in each class body: the engine reads them without running code.


def _spec_and_settings(script: Script) -> tuple[Any, Any]:
    """The detector spec and settings of a script's arguments."""
    from annoloop.detect.detectors import parse_detector
    from annoloop.detect.settings import DetectSettings

    arg = script.get_arg
    nms = float(arg("nms_iou"))
    spec = parse_detector(
        str(arg("detector")), project=script.project, classes=list(arg("classes") or []) or None,
        device=str(arg("device")),
    )  # fmt: skip
    settings = DetectSettings(
        img_min_side=int(arg("img_min_side")) or None,
        img_max_side=int(arg("img_max_side")) or None,
        batch_size=int(arg("batch_size")), keep_threshold=float(arg("keep_threshold")),
        nms_iou=None if nms >= 1 else nms, frame_stride=int(arg("frame_stride")),
        tracker=str(arg("tracker")), label_attr=str(arg("label_attr")),
        confidence_attr=str(arg("confidence_attr")), force=bool(arg("force")),
    )  # fmt: skip
    return spec, settings


def _image_ids(script: Script) -> list[int]:
    """The datasources' image ids, each once, in order."""
    ids: list[int] = []
    for ds in script.inp.datasources:
        ids.extend(int(i) for i in ds.image_ids())
    return list(dict.fromkeys(ids))


class _Stage(Script):
    """What the three stages share: where their files are."""

    def folder(self) -> Any:
        """This run's folder of stage files (per loop iteration)."""
        return self.get_location(f"{self.get_arg('folder')}/{self.iteration}", context="pipe")

    def read_plan(self) -> tuple[Any, Any, list[Any], list[Any]]:
        """(spec, settings, media to process, results of skipped media) written by setup."""
        from annoloop.detect.detectors import DetectorSpec
        from annoloop.detect.results import MediaResult
        from annoloop.detect.settings import DetectSettings
        from annoloop.detect.worker import MediaItem
        from annoloop.errors import NotFound

        loc = self.folder().join("plan.json")
        if not loc.exists():
            raise NotFound(
                f"no plan at {loc}: the setup stage (DetectSetup) must run before this one "
                "with the same 'folder' argument"
            )
        plan = json.loads(loc.read_text())
        spec = DetectorSpec.model_validate(plan["spec"])
        if plan.get("blob"):
            spec = spec.model_copy(update={"blob": self.folder().join(plan["blob"]).read_bytes()})
        settings = DetectSettings.model_validate(plan["settings"])
        items = [MediaItem.model_validate(i) for i in plan["items"]]
        skipped = [MediaResult.from_dict(r) for r in plan["skipped"]]
        return spec, settings, items, skipped

    def result_location(self, index: int) -> Any:
        """Where the worker stage keeps the result of media ``index`` of the plan."""
        return self.folder().join(f"results/{index:05d}.json")


class DetectSetup(_Stage):
    """Setup: the datasources' images minus those stamped by the detector, written as the
    plan the worker and teardown stages read."""

    ARGUMENTS = {
        "detector": {"value": "mtcnn", "help": "mtcnn, FILE.onnx, project:detector, ..."},
        "classes": {"value": [], "help": "class names (torchvision / state file detectors)"},
        "img_min_side": {"value": 0, "help": "resize: short side (0: none)"},
        "img_max_side": {"value": 0, "help": "resize: long side cap (0: none)"},
        "batch_size": {"value": 1, "help": "frames per detector call"},
        "keep_threshold": {"value": 0.5, "help": "drop boxes scoring below"},
        "nms_iou": {"value": 0.5, "help": "NMS IoU threshold (1: no NMS)"},
        "frame_stride": {"value": 1, "help": "every n-th video frame"},
        "tracker": {"value": "hungarian", "help": "hungarian, greedy or none"},
        "label_attr": {"value": "Species", "help": "name of the label attribute"},
        "confidence_attr": {"value": "Confidence", "help": "name of the score attribute"},
        "device": {"value": "auto", "help": "auto, cpu or cuda (cuda: media go to GPU workers)"},
        "force": {"value": False, "help": "also process media already stamped"},
        "folder": {"value": "detect", "help": "folder of the stage files in the pipe folder"},
    }

    def main(self) -> None:
        from annoloop.detect.workflow import setup

        spec, settings = _spec_and_settings(self)
        ids = _image_ids(self)
        items, skipped = setup(None, spec, settings, project=self.project, image_ids=ids)
        folder = self.folder()
        if folder.exists():
            folder.delete(recursive=True)  # an earlier run of this iteration: start afresh
        blob = None
        if spec.blob is not None:  # a state's bytes beside the plan, not base64 inside it
            blob = "detector.bin"
            folder.join(blob).write_bytes(spec.blob)
        plan = {
            "spec": spec.model_dump(mode="json", exclude={"blob"}),
            "blob": blob,
            "settings": settings.model_dump(mode="json"),
            "items": [i.model_dump(mode="json") for i in items],
            "skipped": [r.to_dict() for r in skipped],
        }
        folder.join("plan.json").write_text(json.dumps(plan))
        self.logger.info(
            "%s: %d media to process, %d already processed", spec.label(), len(items),
            len(skipped),
        )  # fmt: skip


class _ThisCluster:
    """Media tasks on the Dask cluster this stage runs on, through its worker's client.

    The stage leaves the worker's thread pool while it waits (``worker_client`` secedes),
    but Dask keeps a seceded task's resources, and its scheduler may still place tasks on
    that worker: a media task asking for a ``slots`` unit could wait there for the slot of
    the very stage that waits for it. So media tasks ask for what else they need (GPU, a
    worker environment) and run on the threads Dask has (the stage's included)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.scheduler_address = str(client.scheduler.address)
        info = client.scheduler_info(n_workers=-1).get("workers", {})
        self._workers = [dict(w.get("resources") or {}) for w in info.values()]

    def submit(self, fn: Any, *args: Any, spec: Any) -> Any:
        from annoloop.execution.resources import SLOTS, task_resources

        need = task_resources(spec, self._workers)
        need.pop(SLOTS, None)
        return self.client.submit(fn, *args, resources=need or None, pure=False)


@contextlib.contextmanager
def _media_executor(name: str) -> Iterator[Any]:
    """The executor of the media tasks: ``name`` (owned here) when given; else the Dask
    cluster this script runs on (see :class:`_ThisCluster`), or None (this process, one
    media after another) outside Dask."""
    from annoloop.execution import get_executor

    if name:
        with get_executor(name) as ex:
            yield ex
        return
    worker = None
    if "distributed" in sys.modules:  # only loaded when this runs on a Dask worker
        from distributed import get_worker

        with contextlib.suppress(ValueError):
            worker = get_worker()
    if worker is None:
        yield None
        return
    from distributed import worker_client

    with worker_client() as client:
        yield _ThisCluster(client)


def _where(executor: Any) -> str:
    """Where the media tasks run, for the log."""
    if executor is None:
        return "in this process, one after another"
    address = getattr(executor, "scheduler_address", None)
    if address is not None:
        return f"as tasks on the Dask cluster {address}"
    return f"as tasks on {type(executor).__name__}"


class DetectWorker(_Stage):
    """Worker: one executor task per media of the plan (GPU workers when the detector runs on
    CUDA; ``envs`` names the worker environments the tasks may use); each result is written
    to the pipe as it comes."""

    ARGUMENTS = {
        "folder": {"value": "detect", "help": "folder of the stage files in the pipe folder"},
        "executor": {"value": "", "help": "'' (the cluster this runs on, else here), local:N, "
                     "dask, tcp://HOST:PORT"},
        "envs": {"value": [], "help": "worker environments of the media tasks (e.g. ['gpu'])"},
    }  # fmt: skip

    def main(self) -> None:
        from annoloop.detect.results import MediaResult
        from annoloop.detect.run import run_media

        spec, settings, items, _ = self.read_plan()
        todo = [i for i in range(len(items)) if not self.result_location(i).exists()]
        if len(todo) < len(items):
            self.logger.info("%d media have results from an earlier run", len(items) - len(todo))

        def keep(k: int, result: MediaResult) -> None:
            self.result_location(todo[k]).write_text(json.dumps(result.to_dict()))
            if not result.ok:
                self.logger.warning("failed %s: %s", result.media, result.error)

        with _media_executor(str(self.get_arg("executor"))) as ex:
            self.logger.info("%d media %s", len(todo), _where(ex))
            results = run_media(
                ex, [items[i] for i in todo], spec, settings, self.progress,
                envs=[str(e) for e in self.get_arg("envs") or []], on_result=keep,
            )  # fmt: skip
        failed = sum(not r.ok for r in results)
        self.logger.info(
            "%d media processed, %d failed, %d boxes", len(results) - failed, failed,
            sum(r.n_boxes for r in results),
        )  # fmt: skip


class DetectTeardown(_Stage):
    """Teardown: predictions and stamps into the project (one transaction), CSV and COCO in
    this element's folder, every failed media named in the log."""

    ARGUMENTS = {
        "folder": {"value": "detect", "help": "folder of the stage files in the pipe folder"},
        "out_csv": {"value": "detections.csv", "help": "CSV file in this element's folder ('')"},
        "out_coco": {"value": "detections.coco.json", "help": "COCO file ('': none)"},
    }

    def main(self) -> None:
        from annoloop.detect.results import MediaResult
        from annoloop.detect.workflow import teardown

        spec, settings, items, skipped = self.read_plan()
        results = list(skipped)
        for i, item in enumerate(items):
            loc = self.result_location(i)
            if loc.exists():
                results.append(MediaResult.from_dict(json.loads(loc.read_text())))
            else:  # the worker stage ended without it (stopped, or its worker died)
                lost = MediaResult(media=item.media, kind=item.kind, media_id=item.media_id,
                                   ok=False, error="the worker stage left no result")  # fmt: skip
                results.append(lost)
        out = {k: str(self.get_arg(k)) for k in ("out_csv", "out_coco")}
        report = teardown(
            results, spec, settings, project=self.project,
            **{k: self.get_path(v) if v else None for k, v in out.items()},
        )  # fmt: skip
        log_report(self, report)


def log_report(script: Script, report: Any) -> None:
    """One summary line in the pipe's log, and one warning per failed media."""
    s = report.summary()
    script.logger.info(
        "%s: %d processed, %d skipped, %d failed, %d boxes, %d predictions stored",
        s["detector"], s["processed"], s["skipped"], len(s["failed"]), s["boxes"],
        s["predictions"],
    )  # fmt: skip
    for failure in s["failed"]:
        script.logger.warning("failed %s: %s", failure["media"], failure["error"])


class DetectScript(DetectSetup):
    """All three stages in one script element: run a detector over the images of the
    datasources before it and store the boxes as predictions (media stamped; re-runs skip
    them). Takes the arguments of :class:`DetectSetup` (``folder`` is unused). The template
    ``detect.yaml`` uses the three stage scripts instead."""

    def main(self) -> None:
        from annoloop.detect.run import run_media
        from annoloop.detect.workflow import setup, teardown

        spec, settings = _spec_and_settings(self)
        ids = _image_ids(self)
        if not ids:
            self.logger.info("no images to process")
            return
        items, skipped = setup(None, spec, settings, project=self.project, image_ids=ids)
        results = [*skipped, *run_media(None, items, spec, settings, self.progress)]
        log_report(self, teardown(results, spec, settings, project=self.project))
