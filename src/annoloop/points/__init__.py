"""Features at points and small classifiers on them: annoloop's PySpacer / CoralNet engine.

Surveyors annotate points on photos; a network extracts a feature vector around each point
and a small classifier suggests labels that humans confirm. The tasks take pydantic messages
(:mod:`.messages`) and run alone or many at a time in a job::

    from annoloop.points import ExtractFeaturesMsg, extract_features
    extract_features(ExtractFeaturesMsg(rowcols=[(120, 300)], image_loc="reef.jpg",
                                        feature_loc="reef.npz"))

Torch and scikit-learn are imported only when a task needs them, and each name here only
when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from annoloop.lazy import lazy_exports

if TYPE_CHECKING:
    from annoloop.points.classifiers import (
        PickledClassifier,
        PointClassifier,
        load_classifier,
    )
    from annoloop.points.extractors import (
        BackboneExtractor,
        DummyExtractor,
        FeatureExtractor,
        get_extractor,
    )
    from annoloop.points.features import ImageFeatures
    from annoloop.points.labels import (
        filter_classes,
        preprocess_labels,
        split_labels,
    )
    from annoloop.points.messages import (
        ClassifyFeaturesMsg,
        ClassifyImageMsg,
        ClassifyReturnMsg,
        ExtractFeaturesMsg,
        ExtractFeaturesReturnMsg,
        ExtractorSpec,
        JobMsg,
        JobReturnMsg,
        TaskResult,
        TrainClassifierMsg,
        TrainClassifierReturnMsg,
        TrainingLabels,
        TrainOptions,
        ValResults,
    )
    from annoloop.points.tasks import (
        classify_features,
        classify_image,
        extract_features,
        run_job,
        run_task,
        train_classifier,
    )

# each name is imported from its module on first use (PEP 562), so that importing, say, the
# training task does not import the extractors and their settings
_LAZY = {
    "PickledClassifier": "annoloop.points.classifiers",
    "PointClassifier": "annoloop.points.classifiers",
    "load_classifier": "annoloop.points.classifiers",
    "BackboneExtractor": "annoloop.points.extractors",
    "DummyExtractor": "annoloop.points.extractors",
    "FeatureExtractor": "annoloop.points.extractors",
    "get_extractor": "annoloop.points.extractors",
    "ImageFeatures": "annoloop.points.features",
    "filter_classes": "annoloop.points.labels",
    "preprocess_labels": "annoloop.points.labels",
    "split_labels": "annoloop.points.labels",
    "ClassifyFeaturesMsg": "annoloop.points.messages",
    "ClassifyImageMsg": "annoloop.points.messages",
    "ClassifyReturnMsg": "annoloop.points.messages",
    "ExtractFeaturesMsg": "annoloop.points.messages",
    "ExtractFeaturesReturnMsg": "annoloop.points.messages",
    "ExtractorSpec": "annoloop.points.messages",
    "JobMsg": "annoloop.points.messages",
    "JobReturnMsg": "annoloop.points.messages",
    "TaskResult": "annoloop.points.messages",
    "TrainClassifierMsg": "annoloop.points.messages",
    "TrainClassifierReturnMsg": "annoloop.points.messages",
    "TrainingLabels": "annoloop.points.messages",
    "TrainOptions": "annoloop.points.messages",
    "ValResults": "annoloop.points.messages",
    "classify_features": "annoloop.points.tasks",
    "classify_image": "annoloop.points.tasks",
    "extract_features": "annoloop.points.tasks",
    "run_job": "annoloop.points.tasks",
    "run_task": "annoloop.points.tasks",
    "train_classifier": "annoloop.points.tasks",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

__all__ = [
    "BackboneExtractor",
    "ClassifyFeaturesMsg",
    "ClassifyImageMsg",
    "ClassifyReturnMsg",
    "DummyExtractor",
    "ExtractFeaturesMsg",
    "ExtractFeaturesReturnMsg",
    "ExtractorSpec",
    "FeatureExtractor",
    "ImageFeatures",
    "JobMsg",
    "JobReturnMsg",
    "PickledClassifier",
    "PointClassifier",
    "TaskResult",
    "TrainClassifierMsg",
    "TrainClassifierReturnMsg",
    "TrainOptions",
    "TrainingLabels",
    "ValResults",
    "classify_features",
    "classify_image",
    "extract_features",
    "filter_classes",
    "get_extractor",
    "load_classifier",
    "preprocess_labels",
    "run_job",
    "run_task",
    "split_labels",
    "train_classifier",
]
