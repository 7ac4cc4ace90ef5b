"""Second stage: request boxes on the images whose image labels are among ``select``."""

import numpy as np

from annoloop.pipeline import Script


class Choose(Script):
    """Read the image labels of the first stage and request boxes on the chosen images,
    proposing the image's label for the boxes to come."""

    ARGUMENTS = {
        "select": {"value": [], "help": "image labels to keep; empty: every labelled image"}
    }

    def main(self) -> None:
        wanted = set(self.get_arg("select") or [])
        chosen = []
        for img in self.inp.img_annos:
            if img.is_junk or img.iteration != self.iteration:
                continue
            labels = set(img.labels)
            if labels and (not wanted or labels & wanted):
                chosen.append(img.image_id)
        self.outp.request_annos(np.asarray(sorted(set(chosen)), dtype=np.int64))
        self.logger.info("%d images go to the second stage", len(set(chosen)))
