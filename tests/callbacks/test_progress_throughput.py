"""The progress bar reads logged metrics only every N batches; clips/s is logged once per window."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from smile.callbacks import ClipsPerSecond, ProgressBar


class _Clips(Dataset):
    def __init__(self, n: int = 14) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"video": torch.full((3,), float(i))}


class _Toy(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        loss = self.lin(batch["video"]).pow(2).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


class _Spy(L.Callback):
    """Records at which batches ``train/clips_per_sec`` was (re)logged."""

    def __init__(self) -> None:
        self.values: list[tuple[int, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        value = trainer.callback_metrics.get("train/clips_per_sec")
        if value is not None and (not self.values or float(value) != self.values[-1][1]):
            self.values.append((batch_idx, float(value)))


def _fit(callbacks: list[L.Callback], log_every: int, clips: int = 14) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        log_every_n_steps=log_every,
        callbacks=callbacks,
    )
    trainer.fit(_Toy(), DataLoader(_Clips(clips), batch_size=2))  # 7 batches by default
    return trainer


@pytest.mark.parametrize(("every", "reads"), [(3, 2 + 1), (1, 7 + 1), (50, 0 + 1)])
def test_progress_bar_reads_metrics_every_n_batches(every, reads):
    bar = ProgressBar(metrics_every_n_steps=every)
    _fit([bar], log_every=every)
    assert bar.metric_reads == reads  # batches 3 and 6 (every=3), plus the epoch end


def test_progress_bar_rejects_zero():
    with pytest.raises(ValueError, match="metrics_every_n_steps"):
        ProgressBar(metrics_every_n_steps=0)


def test_clips_per_second_is_logged_once_per_window():
    spy = _Spy()
    _fit([ClipsPerSecond(every_n_steps=3), spy], log_every=1)
    assert [b for b, _ in spy.values] == [2, 5]  # after batches 3 and 6 (0-based 2 and 5)
    assert all(v > 0 for _, v in spy.values)


def test_clips_per_second_window_defaults_to_the_logging_interval():
    spy = _Spy()
    _fit([ClipsPerSecond(), spy], log_every=2)
    assert [b for b, _ in spy.values] == [1, 3, 5]


def test_clips_per_second_is_logged_when_the_epoch_is_shorter_than_the_window():
    spy = _Spy()
    trainer = _fit([ClipsPerSecond(every_n_steps=5), spy], log_every=1, clips=6)  # 3 steps, window 5
    assert spy.values == []  # no full window inside the epoch
    assert float(trainer.callback_metrics["train/clips_per_sec"]) > 0  # logged once, at the epoch end


def test_clips_per_second_logs_no_extra_rate_after_a_full_window():
    seen: list[float] = []

    class _EpochSpy(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module) -> None:
            seen.append(float(trainer.callback_metrics["train/clips_per_sec"]))

    spy = _Spy()
    _fit([ClipsPerSecond(every_n_steps=3), spy, _EpochSpy()], log_every=1)  # 7 steps: windows end at 3, 6
    assert seen == [spy.values[-1][1]]  # the epoch end keeps the last full window's rate
