"""Two-process DDP (gloo, CPU) matches one process with the doubled per-device batch."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from smile_testing import TINY, compose_cfg

from smile.train import run

ROOT = Path(__file__).resolve().parents[1]
COMMON = [
    "video=tiny",
    "model/encoder=vit_tiny",
    "data.train_dataset.num_samples=64",
    "data.masking.ratio=0.5",
    "data.masking.masks_per_clip=2",
    "data.masking.second_view=batch_permute",
    "trainer.max_steps=6",
    "trainer.log_every_n_steps=1",
    "model.optimizer.lr=5e-2",
    "model.scheduler.warmup_steps=2",
]


def _losses(run_dir: Path) -> list[float]:
    rows = csv.DictReader(open(run_dir / "csv" / "version_0" / "metrics.csv"))
    return [float(r["train/loss"]) for r in rows if r.get("train/loss")]


OBJECTS = ["data/motion=objects", "data/masking=trajectory"]  # SMILE: objects and trajectory masks, drawn globally


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
@pytest.mark.parametrize("extra", [[], OBJECTS], ids=["tube", "smile-objects"])
def test_two_process_ddp_matches_one_process_with_the_doubled_batch(tmp_path, extra):
    env = {**os.environ, "SMILE_OUTPUT_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        *COMMON,
        *extra,
        "data.batch_size=4",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        f"hydra.run.dir={tmp_path}/ddp",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    # TINY sets video/encoder
    single = run(compose_cfg([*TINY, *COMMON[2:], *extra, "data.batch_size=8"], tmp_path / "single"))
    assert single["global_step"] == 6

    ddp_losses, single_losses = _losses(tmp_path / "ddp"), _losses(tmp_path / "single")
    assert len(ddp_losses) == len(single_losses) == 6
    assert ddp_losses == pytest.approx(single_losses, rel=1e-4, abs=1e-5)
    a = torch.load(tmp_path / "ddp/checkpoints/last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(single["last_checkpoint"], weights_only=True)["state_dict"]
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-4, worst
