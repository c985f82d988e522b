"""InputWait: share of step time waiting for a batch, per logging window (issue 15, item 5). Values, not speed."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import hydra
import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from smile.callbacks import InputWait

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "callbacks" / "default.yaml"


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class _Module:
    """Stands in for a LightningModule: ``device`` and ``log``."""

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.logged: list[tuple[str, float]] = []

    def log(self, name: str, value: float, **kwargs) -> None:
        self.logged.append((name, value))

    def values(self, name: str) -> list[float]:
        return [v for n, v in self.logged if n == name]


def _trainer(every: int = 2, workers: int = 3, repeats: int | None = 2) -> SimpleNamespace:
    dataset = SimpleNamespace(repeats=repeats) if repeats is not None else SimpleNamespace()
    return SimpleNamespace(
        log_every_n_steps=every,
        global_step=0,
        is_global_zero=True,
        datamodule=SimpleNamespace(num_workers=workers, train_dataset=dataset),
    )


def _step(cb: InputWait, trainer, module, clock: _Clock, wait: float, step: float, clips: int = 4) -> None:
    """One training step: ``wait`` seconds for the batch, then ``step`` seconds of work."""
    batch = {"video": torch.zeros(clips, 3, 2, 2, 2)}
    clock.t += wait
    cb.on_train_batch_start(trainer, module, batch, 0)
    clock.t += step
    trainer.global_step += 1
    cb.on_train_batch_end(trainer, module, None, batch, 0)


def _run(waits_steps, **trainer_kwargs):
    clock, module, trainer = _Clock(), _Module(), _trainer(**trainer_kwargs)
    cb = InputWait(threshold=0.1, clock=clock)
    cb.on_train_epoch_start(trainer, module)
    for wait, step in waits_steps:
        _step(cb, trainer, module, clock, wait, step)
    return cb, module, trainer, clock


def test_fraction_is_wait_over_wait_plus_step_and_the_log_names_the_knobs(caplog):
    with caplog.at_level(logging.INFO, logger="smile.callbacks.input_wait"):
        # the first batch of the epoch (worker start-up: 100 s) is not counted; then wait 3 s, step 1 s
        cb, module, _, _ = _run([(100.0, 1.0), (3.0, 1.0)], every=2, workers=3, repeats=2)
    assert module.values("data/input_wait_fraction") == [0.75]
    assert module.values("data/step_clips_per_sec") == [4.0]  # 4 clips in 1 s of step
    assert module.values("data/input_clips_per_sec") == [1.0]  # workers load during the step: 4 clips / 4 s
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "waits on data" in lines[0] and "75%" in lines[0]
    assert "data.num_workers (now 3; about 12 would match the step)" in lines[0]
    assert "data.train_dataset.repeats (now 2" in lines[0]
    assert "smile-data transcode" in lines[0] and "Feeding the GPU" in lines[0]
    assert cb.reported


def test_without_workers_the_input_rate_is_clips_over_wait():
    _, module, _, _ = _run([(0.0, 1.0), (2.0, 2.0), (0.0, 1.0), (0.0, 1.0)], every=2, workers=0, repeats=None)
    assert module.values("data/input_wait_fraction") == [0.5, 0.0]
    assert module.values("data/input_clips_per_sec") == [2.0, 1e5]  # 4 clips / 2 s of loading; no wait: the cap


def test_a_dataset_without_repeats_is_not_named(caplog):
    with caplog.at_level(logging.INFO, logger="smile.callbacks.input_wait"):
        _run([(0.0, 1.0), (1.0, 1.0)], repeats=None)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "data.num_workers" in line and "repeats" not in line


def test_input_that_keeps_up_says_so_once_and_every_window_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger="smile.callbacks.input_wait"):
        # windows end at global steps 2, 4, 6: batches 2 | 3-4 | 5-6 are counted
        _, module, _, _ = _run([(5.0, 1.0), (0.25, 0.75), (0.0, 1.0), (0.0, 1.0), (1.0, 1.0), (1.0, 1.0)], every=2)
    assert module.values("data/input_wait_fraction") == [0.25, 0.0, 0.5]
    assert module.values("data/input_clips_per_sec")[1] == 4.0  # with workers: 8 clips / 2 s, a lower bound here
    (line,) = [r.getMessage() for r in caplog.records]  # one line, after the first window only
    assert "waits on data" in line  # 0.25 > 0.1

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="smile.callbacks.input_wait"):
        _run([(5.0, 1.0), (0.05, 0.95)], every=2)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "keeps up" in line and "5%" in line and "num_workers" not in line


def test_checkpoint_saves_and_validation_are_not_counted_as_waiting():
    clock, module, trainer = _Clock(), _Module(), _trainer(every=3)
    cb = InputWait(clock=clock)
    cb.on_train_epoch_start(trainer, module)
    _step(cb, trainer, module, clock, wait=9.0, step=1.0)  # first of the epoch: not counted
    _step(cb, trainer, module, clock, wait=1.0, step=1.0)  # counted
    clock.t += 50.0
    cb.on_save_checkpoint(trainer, module, {})  # a slow save between steps
    _step(cb, trainer, module, clock, wait=1.0, step=1.0)  # the step after the save: not counted; window closes
    assert module.values("data/input_wait_fraction") == [0.5]
    clock.t += 30.0
    cb.on_validation_end(trainer, module)  # validation ran: the next wait starts after it
    for _ in range(3):
        _step(cb, trainer, module, clock, wait=3.0, step=1.0)
    assert module.values("data/input_wait_fraction") == [0.5, 0.75]


def test_a_run_shorter_than_a_window_reports_at_the_epoch_end(caplog):
    with caplog.at_level(logging.INFO, logger="smile.callbacks.input_wait"):
        cb, module, trainer, _ = _run([(0.0, 1.0), (1.0, 3.0)], every=50)
        assert module.values("data/input_wait_fraction") == []
        cb.on_train_epoch_end(trainer, module)
    assert module.values("data/input_wait_fraction") == [0.25]
    assert len(caplog.records) == 1


@pytest.mark.parametrize(
    "kwargs", [{"threshold": 1.5}, {"threshold": -0.1}, {"every_n_steps": 0}, {"max_clips_per_sec": 0.0}]
)
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        InputWait(**kwargs)


def test_default_config_builds_the_callback():
    node = OmegaConf.load(CONFIG)["input_wait"]
    cb = hydra.utils.instantiate(node)
    assert isinstance(cb, InputWait) and cb.threshold == 0.1 and cb.every_n_steps is None


class _Clips(Dataset):
    def __len__(self) -> int:
        return 14

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"video": torch.full((3,), float(i))}


class _Toy(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        return self.lin(batch["video"]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def test_real_fit_logs_a_fraction_in_unit_interval():
    cb = InputWait()
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        log_every_n_steps=2,
        callbacks=[cb],
    )
    trainer.fit(_Toy(), DataLoader(_Clips(), batch_size=2))  # 7 steps: windows close at steps 2, 4, 6
    fraction = float(trainer.callback_metrics["data/input_wait_fraction"])
    assert 0.0 <= fraction <= 1.0
    assert float(trainer.callback_metrics["data/step_clips_per_sec"]) > 0
    assert float(trainer.callback_metrics["data/input_clips_per_sec"]) > 0
    assert cb.reported and set(cb.last) == {
        "data/input_wait_fraction",
        "data/input_clips_per_sec",
        "data/step_clips_per_sec",
    }
