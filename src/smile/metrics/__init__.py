"""Pure metrics: classification from predictions (multi-view test, exact per-video metrics), AVA detections."""

from smile.metrics.classification import (
    MultiViewTest,
    accuracy_metrics,
    gather_predictions,
    merge_predictions,
    metrics_from_predictions,
    prediction_rows,
    reconcile_metrics,
    view_average_probs,
)
from smile.metrics.detections import (
    KeyframeDetections,
    dedupe_keyframes,
    detection_rows,
    gather_detections,
    write_detections_csv,
)

__all__ = [
    "KeyframeDetections",
    "MultiViewTest",
    "accuracy_metrics",
    "dedupe_keyframes",
    "detection_rows",
    "gather_detections",
    "gather_predictions",
    "merge_predictions",
    "metrics_from_predictions",
    "prediction_rows",
    "reconcile_metrics",
    "view_average_probs",
    "write_detections_csv",
]
