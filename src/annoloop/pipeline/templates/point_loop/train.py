"""Learn point labels from every human label so far; measure how often the previous model
agreed with the humans this round; stop the loop when that is good enough."""

import numpy as np

from annoloop.pipeline import Script
from annoloop.pipeline.templates.point_loop.features import fit, patch_features, predict
from annoloop.storage import read_image


class Train(Script):
    """Nearest-centroid classifier on colour features at the labelled points."""

    ARGUMENTS = {
        "target_accuracy": {"value": 0.9, "help": "stop once the model agrees this often"},
        "model": {"value": "point_model.npz", "help": "model file in the pipe folder"},
    }

    def main(self) -> None:
        df = self.inp.to_df()
        df = df[(df["anno_dtype"] == "point") & (df["img_state"] == "done")]
        df = df[df["anno_lbl"].map(len) > 0]
        if df.empty:
            self.logger.warning("no labelled points yet: nothing to learn")
            return
        feats, labels, iters = [], [], []
        for image_id, part in df.groupby("img_id"):
            pixels = read_image(self.project.image_location(int(image_id)))
            xy = np.array(part["anno_data"].tolist(), dtype=np.float64)
            feats.append(patch_features(pixels, xy))
            labels += [lbl[0] for lbl in part["anno_lbl"]]
            iters += part["img_iteration"].astype(int).tolist()
        x = np.concatenate(feats)
        y = np.asarray(labels)
        it = np.asarray(iters)
        path = self.get_path(self.get_arg("model"), "pipe")
        accuracy = None
        location = self.get_location(self.get_arg("model"), "pipe")
        now = it == self.iteration
        if location.exists() and now.any():
            with np.load(path, allow_pickle=False) as f:
                previous = {k: f[k] for k in f.files}
            predicted, _ = predict(previous, x[now])
            accuracy = float((predicted == y[now]).mean())
        model = fit(x, y)
        np.savez(path, **model)
        text = "n/a (first round)" if accuracy is None else f"{accuracy:.2%}"
        self.logger.info(
            "iteration %d: trained on %d points of %d classes; the previous model agreed with "
            "the humans on %s of this round's points",
            self.iteration,
            len(y),
            len(model["classes"]),
            text,
        )
        self.outp.add_visual_output(
            html=f"<p>iteration {self.iteration}: agreement {text}, {len(y)} labelled points</p>"
        )
        if accuracy is not None and accuracy >= float(self.get_arg("target_accuracy")):
            self.logger.info("good enough: ending the loop")
            self.break_loop()
