"""End-of-run summary: how the loss moved, the last validation metrics and where the outputs are."""

from __future__ import annotations

from collections import deque
from typing import Any

import lightning as L


class LossSummary(L.Callback):
    """Averages ``train/loss`` over the first and last ``window`` steps for the end-of-run report.

    The report is printed by the entry point after ``fit`` returns, below the closed progress bar.

    Args:
        window: Steps averaged at each end, so one noisy step does not decide the verdict.
        output_dir: Run directory to name in the summary.
    """

    def __init__(self, window: int = 10, output_dir: str | None = None) -> None:
        self.window = window
        self.output_dir = output_dir
        self.head: list = []  # first `window` losses (tensors: no host sync in the step)
        self.tail: deque = deque(maxlen=window)
        self.steps = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            loss = loss.detach()
            if len(self.head) < self.window:
                self.head.append(loss)
            self.tail.append(loss)
            self.steps += 1

    def summary(self) -> dict[str, float] | None:
        """``{"first": mean of the first window, "last": mean of the last window, "steps": n}``."""
        if not self.steps:
            return None
        n = max(1, min(self.window, self.steps // 2))  # short runs: halves, so the two ends differ
        first = sum(float(x) for x in self.head[:n]) / n
        last = sum(float(x) for x in list(self.tail)[-n:]) / n
        return {"first": first, "last": last, "steps": self.steps}

    def report(self, trainer: L.Trainer) -> str:
        """The end-of-run text: loss movement, last validation metrics, run directory, checkpoint and logs."""
        lines = ["", "=" * 72]
        stats = self.summary()
        if stats is not None:
            change = 100.0 * (stats["last"] - stats["first"]) / max(abs(stats["first"]), 1e-12)
            lines.append(
                f"train/loss over {stats['steps']} steps this run: {stats['first']:.4f} -> {stats['last']:.4f} "
                f"({change:+.1f} %; means of the first and last steps)"
            )
        val = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        if val:  # what a finetuning or detection run is judged by (e.g. val/acc1, val/frame_map)
            lines.append("last validation: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(val.items())))
        if self.output_dir:
            lines.append(f"outputs:     {self.output_dir}")
        ckpt = getattr(trainer.checkpoint_callback, "last_model_path", "")
        if ckpt:
            lines.append(f"checkpoint:  {ckpt}  (re-run the same command to resume)")
        for lg in trainer.loggers:
            if getattr(lg, "log_dir", None):
                lines.append(f"{type(lg).__name__}: {lg.log_dir}")
        lines.append("=" * 72)
        return "\n".join(lines)
