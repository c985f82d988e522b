"""The end-of-run summary: loss movement over the first and last steps, the last validation metrics, paths."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from smile.callbacks import LossSummary


def _trainer(metrics: dict) -> SimpleNamespace:
    return SimpleNamespace(callback_metrics=metrics, checkpoint_callback=None, loggers=[])


def test_report_gives_the_loss_ends_and_the_last_validation_metrics():
    summary = LossSummary(window=2, output_dir="outputs/run")
    for loss in (4.0, 2.0, 3.0, 1.0, 0.5):
        summary.on_train_batch_end(None, None, {"loss": torch.tensor(loss)}, None, 0)  # type: ignore[arg-type]
    metrics = {"val/frame_map": torch.tensor(0.765), "val/acc1": torch.tensor(0.5), "train/loss": torch.tensor(9.0)}
    lines = summary.report(_trainer(metrics)).splitlines()  # type: ignore[arg-type]
    assert lines[2] == "train/loss over 5 steps this run: 3.0000 -> 0.7500 (-75.0 %; means of the first and last steps)"
    assert lines[3] == "last validation: val/acc1 0.5000, val/frame_map 0.7650"
    assert lines[4] == "outputs:     outputs/run"


def test_no_validation_line_without_validation_metrics():
    summary = LossSummary()
    text = summary.report(_trainer({"train/loss": torch.tensor(1.0)}))  # type: ignore[arg-type]
    assert "last validation" not in text and "train/loss over" not in text  # no steps, no validation
