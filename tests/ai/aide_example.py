"""An AIDE-style model, written the way AIDE's documentation asks (microsoft/
aerial_wildlife_detection, ``ai/models``): constructor ``(project, config, dbConnector,
fileServer, options)``, ``train`` / ``average_model_states`` / ``inference`` taking
``updateStateFun``, bytes state dicts, UUID-keyed data, labels by class UUID.

It is a nearest-mean-colour image classifier: simple, but it reads images through the file
server, options through ``verifyOptions`` and reports progress like a real AIDE model.
Nothing in it knows annoloop.
"""

import io
import json

import numpy as np
from PIL import Image


class MeanColourClassifier:
    def __init__(self, project, config, dbConnector, fileServer, options=None):
        self.project = project
        self.config = config
        self.dbConnector = dbConnector
        self.fileServer = fileServer
        self.options = options or self.getDefaultOptions()
        # AIDE's AIModel base queries the project settings and tolerates an empty answer
        rows = dbConnector.execute(
            "SELECT annotationtype FROM aide_admin.project WHERE shortname = %s;",
            (project,),
            1,
        )
        self.annotation_type = rows[0]["annotationtype"] if rows else "labels"
        self.temp_dir = config.getProperty("LabelUI", "tempfiles_dir", type=str, fallback="/tmp")

    @staticmethod
    def getDefaultOptions():
        return {"size": 4, "temperature": 20.0}

    @staticmethod
    def verifyOptions(options):
        warnings, errors = [], []
        opts = dict(MeanColourClassifier.getDefaultOptions())
        opts.update(options or {})
        if not isinstance(opts["size"], int) or opts["size"] < 1:
            errors.append("size must be a positive integer")
        if opts.get("temperature", 1) <= 0:
            errors.append("temperature must be positive")
        for key in list(opts):
            if key not in ("size", "temperature"):
                warnings.append(f"unknown option {key} removed")
                del opts[key]
        return {"valid": not errors, "warnings": warnings, "errors": errors, "options": opts}

    def _vector(self, filename):
        raw = self.fileServer.getFile(filename)
        img = Image.open(io.BytesIO(raw)).convert("RGB")
        size = self.options["size"]
        return np.asarray(img.resize((size, size)), np.float64).ravel() / 255.0

    def train(self, stateDict, data, updateStateFun):
        sums, counts = {}, {}
        if stateDict is not None:
            old = json.loads(stateDict.decode("utf-8"))
            for key, value in old["sums"].items():
                sums[key] = np.asarray(value)
                counts[key] = old["counts"][key]
        images = data["images"]
        for n, (_uuid, meta) in enumerate(images.items()):
            vec = self._vector(meta["filename"])
            for anno in meta.get("annotations", []):
                label = anno["label"]
                sums[label] = sums.get(label, 0) + vec
                counts[label] = counts.get(label, 0) + 1
            updateStateFun(
                state="PROGRESS", message="reading images", done=n + 1, total=len(images)
            )
        state = {"sums": {k: list(map(float, v)) for k, v in sums.items()}, "counts": counts}
        return json.dumps(state).encode("utf-8")

    def average_model_states(self, stateDicts, updateStateFun):
        sums, counts = {}, {}
        for i, blob in enumerate(stateDicts):
            state = json.loads(blob.decode("utf-8"))
            for key, value in state["sums"].items():
                sums[key] = sums.get(key, 0) + np.asarray(value)
                counts[key] = counts.get(key, 0) + state["counts"][key]
            updateStateFun(state="PROGRESS", message="averaging", done=i + 1, total=len(stateDicts))
        state = {"sums": {k: list(map(float, v)) for k, v in sums.items()}, "counts": counts}
        return json.dumps(state).encode("utf-8")

    def inference(self, stateDict, data, updateStateFun):
        state = json.loads(stateDict.decode("utf-8"))
        labels = sorted(state["sums"])
        means = np.stack([np.asarray(state["sums"][k]) / state["counts"][k] for k in labels])
        out = {}
        for n, (image_uuid, meta) in enumerate(data["images"].items()):
            vec = self._vector(meta["filename"])
            dist = ((means - vec) ** 2).mean(axis=1)
            logits = np.exp(-dist * self.options["temperature"])
            logits = logits / logits.sum()
            best = int(np.argmax(logits))
            # AIDE wants logits in the order of the project's label classes
            order = [labels.index(c) if c in labels else None for c in data["labelClasses"]]
            full = [float(logits[j]) if j is not None else 0.0 for j in order]
            out[image_uuid] = {
                "predictions": [
                    {"label": labels[best], "confidence": float(logits[best]), "logits": full}
                ]
            }
            updateStateFun(
                state="PROGRESS", message="predicting", done=n + 1, total=len(data["images"])
            )
        return out
