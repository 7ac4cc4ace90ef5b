"""Task functions that executors run (module level, so that process and Dask workers can
import them): one training shard, one inference chunk, one evaluation.

Each rebuilds its model from the registry name and options and reports progress to the
running task (:func:`annoloop.execution.current_progress`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from annoloop.ai.base import ModelState, Predictions, TrainingData
from annoloop.ai.evaluation import evaluate
from annoloop.ai.registry import get_model
from annoloop.execution import current_progress


def _own(state: ModelState | None, model: Any) -> ModelState | None:
    # states loaded from the store carry the registry name; the model checks its own name
    return None if state is None else dataclasses.replace(state, model=model.info.name)


def train_task(
    model_name: str, options: dict[str, Any], state: ModelState | None, data: TrainingData
) -> ModelState:
    """Train one shard."""
    model = get_model(model_name, options)
    return model.train(_own(state, model), data, current_progress())


def inference_task(
    model_name: str, options: dict[str, Any], state: ModelState, data: TrainingData
) -> Predictions:
    """Predict one chunk of images."""
    model = get_model(model_name, options)
    return model.inference(_own(state, model), data, current_progress())  # type: ignore[arg-type]


def evaluate_task(
    model_name: str, options: dict[str, Any], state: ModelState, data: TrainingData
) -> dict[str, float]:
    """Score a state on a validation set."""
    model = get_model(model_name, options)
    return evaluate(model, _own(state, model), data, current_progress())  # type: ignore[arg-type]
