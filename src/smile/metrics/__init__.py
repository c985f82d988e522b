"""Pure metrics: classification from predictions (multi-view test, exact per-video metrics)."""

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

__all__ = [
    "MultiViewTest",
    "accuracy_metrics",
    "gather_predictions",
    "merge_predictions",
    "metrics_from_predictions",
    "prediction_rows",
    "reconcile_metrics",
    "view_average_probs",
]
