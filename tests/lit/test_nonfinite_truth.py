"""The non-finite guard tells the truth: no checkpoint inside a NaN streak, the error names one from
before it (whose weights resume finitely), and the CSV shows the real count and the NaN losses."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest
import torch

from smile.callbacks.checkpoint_io import checked_global_step
from smile.lit import NonFiniteLossError, PretrainLitModule
from smile.train import run

FIRST_NAN = 5  # the loss is NaN at every global step >= 5 (the 6th batch on)
EVERY_2 = [
    "callbacks.checkpoint.every_n_train_steps=2",
    "trainer.log_every_n_steps=1",
    "model.optimizer.lr=1e-2",
    "model.scheduler.warmup_steps=0",
]


@pytest.fixture
def diverges(monkeypatch):
    """Poison the pretraining loss from global step ``FIRST_NAN`` on (in this run and any resume)."""
    original = PretrainLitModule.compute_loss

    def compute_loss(self: PretrainLitModule, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        loss = original(self, video, mask)
        return loss * float("nan") if self.global_step >= FIRST_NAN else loss

    monkeypatch.setattr(PretrainLitModule, "compute_loss", compute_loss)


def _rows(run_dir: Path, version: int = 0) -> list[dict[str, str]]:
    with open(run_dir / "csv" / f"version_{version}" / "metrics.csv") as f:
        return [r for r in csv.DictReader(f) if r.get("train/loss")]


def _named_checkpoint(message: str) -> tuple[Path, int]:
    found = re.search(r"Newest checkpoint from before the streak: (\S+) \(step (\d+)\)", message)
    assert found, message
    return Path(found[1]), int(found[2])


@pytest.mark.parametrize("fused", [False, True], ids=["host-mode", "fused-device-mode"])
def test_a_diverging_run_names_a_checkpoint_from_before_the_streak(tiny_cfg, tmp_path, diverges, fused):
    out = tmp_path / "run"
    flags = [*EVERY_2, f"model.optimizer.fused={str(fused).lower()}", "model.max_nonfinite_steps=4"]
    with pytest.raises(NonFiniteLossError, match=r"^4 consecutive non-finite losses, the last at step 8\. ") as err:
        run(tiny_cfg(*flags, "trainer.max_steps=30", out=out))
    path, step = _named_checkpoint(str(err.value))
    assert path == out / "checkpoints" / "step0000004.ckpt" and step == 4 < FIRST_NAN
    assert checked_global_step(out / "checkpoints" / "last.ckpt") == 4  # not rewritten inside the streak
    assert sorted(p.name for p in (out / "checkpoints").glob("*.ckpt")) == [
        "last.ckpt",
        "step0000002.ckpt",
        "step0000004.ckpt",
    ]
    weights = torch.load(path, weights_only=True)["state_dict"]
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())

    rows = _rows(out)  # the CSV: the real running count, and the NaN losses as they were
    counts = [float(r["train/nonfinite_steps"]) for r in rows]
    losses = [float(r["train/loss"]) for r in rows]
    expected = [0, 0, 0, 0, 0, 1, 2, 3] + ([4] if fused else [])  # fused: found at the step-10 save's poll
    assert counts == expected
    assert all(math.isfinite(x) for x in losses[:FIRST_NAN]) and all(math.isnan(x) for x in losses[FIRST_NAN:])

    resumed = run(tiny_cfg(*flags, "trainer.max_steps=5", f"resume={path}", out=out))  # the message's advice
    assert resumed["global_step"] == 5
    assert [float(r["train/loss"]) for r in _rows(out, version=1)] == pytest.approx([losses[4]], rel=1e-5)


def test_a_run_ending_inside_a_streak_keeps_last_ckpt_from_before_it(tiny_cfg, tmp_path, diverges):
    out = tmp_path / "run"
    result = run(tiny_cfg(*EVERY_2, "trainer.max_steps=7", "model.max_nonfinite_steps=10", out=out))
    assert result["global_step"] == 7  # steps 5 and 6 were NaN: skipped, no error yet
    assert checked_global_step(out / "checkpoints" / "last.ckpt") == 4
    assert not (out / "checkpoints" / "step0000006.ckpt").exists()
    assert [float(r["train/nonfinite_steps"]) for r in _rows(out)] == [0, 0, 0, 0, 0, 1, 2]
