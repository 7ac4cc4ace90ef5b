"""The detection workflow as a pipeline script (template ``detect.yaml``): setup (the
datasources' images, minus those already stamped), the worker (one media at a time, the
detector loaded once) and teardown (predictions, track ids, stamps) run inside one script
element; :func:`annoloop.detect.run` does the same outside pipelines."""

from __future__ import annotations

from annoloop.pipeline import Script


class DetectScript(Script):
    """Run a detector over the images of the datasources before this script and store the
    boxes as predictions of the project (media stamped; re-runs skip them)."""

    ARGUMENTS = {
        "detector": {"value": "mtcnn", "help": "mtcnn, FILE.onnx, project:detector, ..."},
        "img_min_side": {"value": 0, "help": "resize: short side (0: none)"},
        "img_max_side": {"value": 0, "help": "resize: long side cap (0: none)"},
        "batch_size": {"value": 1, "help": "frames per detector call"},
        "keep_threshold": {"value": 0.5, "help": "drop boxes scoring below"},
        "frame_stride": {"value": 1, "help": "every n-th video frame"},
        "device": {"value": "auto", "help": "auto, cpu or cuda"},
    }

    def main(self) -> None:
        from annoloop.detect.run import run

        ids: list[int] = []
        for ds in self.inp.datasources:
            ids.extend(int(i) for i in ds.image_ids())
        sources = [str(self.project.image_location(i)) for i in dict.fromkeys(ids)]
        if not sources:
            self.logger.info("no images to process")
            return
        report = run(
            str(self.get_arg("detector")), sources, project=self.project,
            img_min_side=int(self.get_arg("img_min_side")) or None,
            img_max_side=int(self.get_arg("img_max_side")) or None,
            batch_size=int(self.get_arg("batch_size")),
            keep_threshold=float(self.get_arg("keep_threshold")),
            frame_stride=int(self.get_arg("frame_stride")),
            device=str(self.get_arg("device")), progress=self.progress,
        )  # fmt: skip
        s = report.summary()
        self.logger.info(
            "%s: %d processed, %d skipped, %d failed, %d boxes", s["detector"], s["processed"],
            s["skipped"], len(s["failed"]), s["boxes"],
        )  # fmt: skip
        for failure in s["failed"]:
            self.logger.warning("failed %s: %s", failure["media"], failure["error"])
