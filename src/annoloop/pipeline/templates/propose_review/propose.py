"""Run a proposer on every image and request a review of its boxes."""

import importlib

import numpy as np

from annoloop.pipeline import Script
from annoloop.storage import read_image


class Propose(Script):
    """Propose boxes with ``proposer`` (``module:function`` taking an RGB array and returning
    ``[(box, score), ...]``) and request their review in the connected tasks."""

    ARGUMENTS = {
        "proposer": {
            "value": "annoloop.pipeline.templates.propose_review.blobs:propose",
            "help": "module:function that proposes boxes for an RGB image",
        },
        "label": {"value": "object", "help": "label of the proposed boxes"},
        "max_pixels": {"value": 50_000_000, "help": "refuse larger images"},
    }

    def main(self) -> None:
        module, _, name = str(self.get_arg("proposer")).partition(":")
        proposer = getattr(importlib.import_module(module), name)
        label = self.get_arg("label")
        ids = np.concatenate([ds.image_ids() for ds in self.inp.datasources] or [[]])
        ids = ids.astype(np.int64)
        images = self.project.images(ids).set_index("id")
        for i, image_id in enumerate(ids.tolist()):
            location = self.project.image_location(image_id)
            pixels = read_image(location, max_pixels=int(self.get_arg("max_pixels")))
            found = proposer(pixels)
            self.outp.request_annos(
                image_id,
                annos=[list(box) for box, _ in found],
                anno_types=["bbox"] * len(found),
                anno_labels=[label] * len(found),
                confidences=[score for _, score in found],
            )
            self.progress(i + 1, len(ids), str(images.loc[image_id, "location"]))
        self.logger.info("proposed boxes for %d images", len(ids))
