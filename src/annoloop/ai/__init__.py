"""Machine learning in the annotation loop: model plug-ins, jobs, model states, rankers and
active-learning simulation.

- :mod:`annoloop.ai.base`: the plug-in contract (:class:`Model`, :class:`TrainingData`,
  :class:`Predictions`, :class:`ModelState`, :class:`ModelInfo`).
- :mod:`annoloop.ai.registry`: ``get_model(name)`` / ``list_models()``.
- :mod:`annoloop.ai.rankers`: active-learning priorities; :mod:`annoloop.ai.selection`:
  diversity-aware batches.
- :mod:`annoloop.ai.service`: ``train_job``, ``inference_job``, ``simulate_al`` for the CLI;
  :mod:`annoloop.ai.sample_data`: labelled digits and photo mosaics for simulations.

Importing this package imports numpy and pydantic, never torch.
"""

from __future__ import annotations

from annoloop.ai.base import (
    ImageItem,
    InferenceData,
    Model,
    ModelInfo,
    ModelState,
    OptionsReport,
    Predictions,
    TrainingData,
)

__all__ = [
    "ImageItem",
    "InferenceData",
    "Model",
    "ModelInfo",
    "ModelState",
    "OptionsReport",
    "Predictions",
    "TrainingData",
]
