"""Resume never trusts a file blindly: damaged checkpoints are skipped (with a warning) or refused by name."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from smile_testing import TINY, compose_cfg

from smile.callbacks.checkpoint_io import UnusableCheckpointError, checked_global_step
from smile.train import find_resume_checkpoint, run, setup

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["callbacks.checkpoint.every_n_train_steps=2", "model.optimizer.lr=1e-2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A run stopped at step 4: step0000002.ckpt, step0000004.ckpt and last.ckpt (step 4)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    run(compose_cfg([*TINY, *STEPS, "trainer.max_steps=4"], out))
    return out


def _copy(trained: Path, dest: Path) -> Path:
    shutil.copytree(trained, dest)
    ckpts = dest / "checkpoints"
    for age, name in enumerate(["last.ckpt", "step0000004.ckpt", "step0000002.ckpt"]):
        os.utime(ckpts / name, (1e9 - 100 * age, 1e9 - 100 * age))  # last.ckpt newest, step 2 oldest
    return ckpts


def _truncate(path: Path, size: int | None) -> None:
    data = path.read_bytes()
    stat = path.stat()
    path.write_bytes(data[: len(data) // 2 if size is None else size])
    os.utime(path, (stat.st_atime, stat.st_mtime))  # still the newest


@pytest.mark.parametrize("size", [0, 10, None], ids=["0-bytes", "10-bytes", "half"])
def test_truncated_newest_checkpoints_are_skipped_with_a_warning(trained, tmp_path, caplog, size):
    ckpts = _copy(trained, tmp_path / "run")
    _truncate(ckpts / "last.ckpt", size)
    _truncate(ckpts / "step0000004.ckpt", size)
    with caplog.at_level(logging.WARNING, logger="smile.train"):
        chosen = find_resume_checkpoint(tmp_path / "run", "auto")
    assert chosen == str(ckpts / "step0000002.ckpt")
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(ckpts / "last.ckpt") in warning and str(ckpts / "step0000004.ckpt") in warning
    assert f"resuming from {ckpts / 'step0000002.ckpt'} (step 2)" in warning


def test_the_run_resumes_from_the_newest_intact_checkpoint(trained, tmp_path):
    ckpts = _copy(trained, tmp_path / "run")
    _truncate(ckpts / "last.ckpt", None)
    _truncate(ckpts / "step0000004.ckpt", 10)
    started: list[int] = []

    class StartStep(L.Callback):
        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            started.append(trainer.global_step)

    r = setup(compose_cfg([*TINY, *STEPS, "trainer.max_steps=6"], tmp_path / "run"))
    assert r.ckpt_path == str(ckpts / "step0000002.ckpt")
    r.trainer.callbacks.append(StartStep())
    assert r.fit()["global_step"] == 6
    assert started == [2]  # resumed at step 2, not from scratch
    assert checked_global_step(ckpts / "last.ckpt") == 6  # and the damaged last.ckpt was replaced


def test_all_damaged_fails_naming_every_file(trained, tmp_path):
    ckpts = _copy(trained, tmp_path / "run")
    for name, size in (("last.ckpt", 0), ("step0000004.ckpt", 10), ("step0000002.ckpt", None)):
        _truncate(ckpts / name, size)
    with pytest.raises(UnusableCheckpointError) as err:
        find_resume_checkpoint(tmp_path / "run", "auto")
    text = str(err.value)
    assert "\n" not in text and f"no intact checkpoint to resume from in {ckpts}" in text
    assert f"{ckpts / 'last.ckpt'} is empty (0 bytes)" in text
    assert f"{ckpts / 'step0000004.ckpt'} cannot be read (10 bytes: not a complete zip archive: truncated" in text
    assert f"{ckpts / 'step0000002.ckpt'} cannot be read" in text and "resume=false" in text


def test_an_explicit_damaged_or_foreign_file_is_refused_by_name(trained, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes((trained / "checkpoints" / "last.ckpt").read_bytes()[:1000])
    with pytest.raises(UnusableCheckpointError, match=rf"^resume={bad}: {bad} cannot be read \(1000 bytes"):
        find_resume_checkpoint(tmp_path, str(bad))
    weights = tmp_path / "weights.ckpt"  # a weights-only file is not a training checkpoint
    torch.save({"state_dict": {"w": torch.zeros(2)}}, weights)
    with pytest.raises(UnusableCheckpointError, match=r"is not a training checkpoint \(no global_step, loops or "):
        find_resume_checkpoint(tmp_path, str(weights))
    good = trained / "checkpoints" / "step0000002.ckpt"
    assert find_resume_checkpoint(tmp_path, str(good)) == str(good)


def test_the_command_line_prints_one_line_not_a_traceback(trained, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x00" * 10)
    env = {**os.environ, "SMILE_OUTPUT_ROOT": str(tmp_path / "out")}
    cmd = [sys.executable, str(ROOT / "train.py"), *TINY, f"resume={bad}", f"hydra.run.dir={tmp_path}/cli"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: resume={bad}: {bad} cannot be read (10 bytes")
