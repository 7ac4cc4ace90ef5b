"""Put random points on every image and request their labels, proposing the labels the
current classifier predicts (from the second round on)."""

import numpy as np

from annoloop.pipeline import Script
from annoloop.pipeline.templates.point_loop.features import patch_features, predict
from annoloop.storage import read_image


class SamplePoints(Script):
    """Random points per image; proposals labelled by the model trained so far."""

    ARGUMENTS = {
        "points": {"value": 10, "help": "points per image"},
        "seed": {"value": 0, "help": "random seed (the iteration is added)"},
        "model": {"value": "point_model.npz", "help": "model file in the pipe folder"},
    }

    def main(self) -> None:
        rng = np.random.default_rng(int(self.get_arg("seed")) + self.iteration)
        n = int(self.get_arg("points"))
        model_path = self.get_location(self.get_arg("model"), "pipe")
        model = None
        if model_path.exists():
            with np.load(self.get_path(self.get_arg("model"), "pipe"), allow_pickle=False) as f:
                model = {k: f[k] for k in f.files}
        ids = np.concatenate([ds.image_ids() for ds in self.inp.datasources] or [[]])
        for i, image_id in enumerate(ids.astype(np.int64).tolist()):
            xy = rng.uniform(0.05, 0.95, size=(n, 2))
            labels, confidences = [], None
            if model is not None:
                pixels = read_image(self.project.image_location(image_id))
                predicted, confidences = predict(model, patch_features(pixels, xy))
                labels = [str(v) for v in predicted.tolist()]
            self.outp.request_annos(
                image_id,
                annos=xy.tolist(),
                anno_types=["point"] * n,
                anno_labels=labels,
                confidences=None if confidences is None else confidences.tolist(),
            )
            self.progress(i + 1, len(ids), "sampling points")
        self.logger.info(
            "iteration %d: %d points on %d images%s",
            self.iteration,
            n * len(ids),
            len(ids),
            " with proposed labels" if model is not None else "",
        )
