"""Features at points and small classifiers on them: annoloop's PySpacer / CoralNet engine.

Surveyors annotate points on photos; a network extracts a feature vector around each point
and a small classifier suggests labels that humans confirm. The tasks take pydantic messages
(:mod:`.messages`) and run alone or many at a time in a job::

    from annoloop.points import ExtractFeaturesMsg, extract_features
    extract_features(ExtractFeaturesMsg(rowcols=[(120, 300)], image_loc="reef.jpg",
                                        feature_loc="reef.npz"))

Torch and scikit-learn are imported only when a task needs them.
"""

from __future__ import annotations

from annoloop.points.classifiers import PickledClassifier, PointClassifier, load_classifier
from annoloop.points.extractors import (
    BackboneExtractor,
    DummyExtractor,
    FeatureExtractor,
    get_extractor,
)
from annoloop.points.features import ImageFeatures
from annoloop.points.labels import filter_classes, preprocess_labels, split_labels
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
