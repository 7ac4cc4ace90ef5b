"""Image-quality experiments: how does image quality change a model's metrics?

The iquaflow workflow, rebuilt on annoloop's core:

1. :class:`ExperimentDataset` wraps a folder of images with COCO, GeoJSON or mask ground truth
   (or is made from an annoloop project or task) and carries the params to log.
2. Modifiers (:mod:`annoloop.experiments.modifiers`: jpeg, blur, noise, resample, sharpen,
   quantize, rer, plug-ins) write ``NAME#MODIFIER`` copies beside it, in parallel on the
   executor, with annotations scaled when the geometry changes, reusing earlier outputs.
3. :class:`Experiment` runs a task (an iquaflow-style training script, a Python callable, or
   a built-in annoloop model) on every modified dataset over a grid of hyper-parameters with
   repetitions, in parallel on the executor, and logs everything to MLflow (a sqlite store
   by default) with dataset digests.
4. :class:`ExperimentInfo` reads the runs back as a dict or a DataFrame and applies new
   metrics to finished runs; :class:`ExperimentVisual` plots them as PNG.
5. :func:`sanity_check` repairs a dataset's ground truth; :func:`dataset_statistics`
   describes it.

Names are imported on first use so that ``import annoloop.experiments`` stays light.
"""

from __future__ import annotations

from annoloop.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "ExperimentDataset": "annoloop.experiments.dataset",
    "DatasetDigest": "annoloop.experiments.dataset",
    "Modifier": "annoloop.experiments.modifiers",
    "ImageContext": "annoloop.experiments.modifiers",
    "Original": "annoloop.experiments.modifiers",
    "Jpeg": "annoloop.experiments.modifiers",
    "Blur": "annoloop.experiments.modifiers",
    "BlurToRER": "annoloop.experiments.modifiers",
    "Noise": "annoloop.experiments.modifiers",
    "Quantize": "annoloop.experiments.modifiers",
    "Resample": "annoloop.experiments.modifiers",
    "Sharpen": "annoloop.experiments.modifiers",
    "apply_modifier": "annoloop.experiments.modifiers",
    "apply_modifiers": "annoloop.experiments.modifiers",
    "get_modifier": "annoloop.experiments.modifiers",
    "list_modifiers": "annoloop.experiments.modifiers",
    "Task": "annoloop.experiments.tasks",
    "ScriptTask": "annoloop.experiments.tasks",
    "CallableTask": "annoloop.experiments.tasks",
    "ModelTask": "annoloop.experiments.tasks",
    "RunSpec": "annoloop.experiments.tasks",
    "RunOutcome": "annoloop.experiments.tasks",
    "Experiment": "annoloop.experiments.experiment",
    "ExperimentResult": "annoloop.experiments.experiment",
    "RunRecord": "annoloop.experiments.experiment",
    "ExperimentInfo": "annoloop.experiments.info",
    "ExperimentVisual": "annoloop.experiments.visual",
    "SanityReport": "annoloop.experiments.sanity",
    "sanity_check": "annoloop.experiments.sanity",
    "dataset_statistics": "annoloop.experiments.statistics",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
