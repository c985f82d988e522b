"""End-to-end pretraining: the loss falls, resume is exact, bad steps are skipped and bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

from smile.lit import NonFiniteLossError
from smile.teachers import PixelTarget
from smile.train import run, setup

ROOT = Path(__file__).resolve().parents[1]

# 40 clips / batch 4 = 10 steps per epoch; stopping at step 7 interrupts mid-epoch.
RESUME = [
    "data.train_dataset.num_samples=40",
    "data.batch_size=4",
    "trainer.max_epochs=3",
    "trainer.max_steps=14",
    "model.optimizer.lr=1e-2",
    "model.scheduler.warmup_steps=3",
    "data/masking=tube",
    "data.masking.ratio=0.5",
    "data.masking.masks_per_clip=2",
    "model.encoder.drop_path=0.1",  # draws from the global RNG: resume must restore it
    "callbacks.checkpoint.every_n_train_steps=100",
]


class StopAt(L.Callback):
    """Ends training after ``step`` optimizer steps, like a job that is pre-empted."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def net_state(path: str | Path) -> dict[str, torch.Tensor]:
    sd = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    return {k: v for k, v in sd.items() if k.startswith("net.")}


def assert_same_weights(a: dict, b: dict, atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= atol, f"weights differ by {worst}"


def test_loss_falls_on_synthetic_data(tiny_cfg):
    cfg = tiny_cfg(
        "data.train_dataset.num_samples=96",
        "data.batch_size=8",
        "trainer.max_epochs=4",  # 48 steps
        "model.target.normalize=false",
        "model.optimizer.lr=8e-2",
        "model.scheduler.warmup_steps=5",
        "data.masking.ratio=0.5",
        "callbacks.summary.window=8",
    )
    out = run(cfg)
    assert out["global_step"] == 48
    loss = out["loss"]
    assert loss["steps"] == 48
    assert loss["last"] < 0.5 * loss["first"], loss
    assert Path(out["last_checkpoint"]).is_file()
    metrics = (Path(cfg.paths.output_dir) / "csv" / "version_0" / "metrics.csv").read_text()
    assert "train/loss" in metrics and "train/clips_per_sec" in metrics


def test_resume_mid_epoch_matches_uninterrupted_run(tiny_cfg, tmp_path):
    """In-process stop at step 7 and resume: the fast twin of the slow kill -9 test below."""
    full = run(tiny_cfg(*RESUME, out=tmp_path / "full"))
    assert full["global_step"] == 14

    first = setup(tiny_cfg(*RESUME, out=tmp_path / "split"))
    first.trainer.callbacks.append(StopAt(7))
    assert first.fit()["global_step"] == 7
    second = setup(tiny_cfg(*RESUME, out=tmp_path / "split"))  # the same command again
    assert second.ckpt_path and second.ckpt_path.endswith("last.ckpt")
    assert second.fit()["global_step"] == 14

    assert_same_weights(net_state(full["last_checkpoint"]), net_state(tmp_path / "split/checkpoints/last.ckpt"))
    opt_a = torch.load(full["last_checkpoint"], weights_only=False)["optimizer_states"][0]["state"]
    opt_b = torch.load(tmp_path / "split/checkpoints/last.ckpt", weights_only=False)["optimizer_states"][0]["state"]
    assert all(torch.allclose(opt_a[i]["exp_avg"], opt_b[i]["exp_avg"], atol=1e-7) for i in opt_a)


def test_resume_false_starts_fresh(tiny_cfg, tmp_path):
    run(tiny_cfg("trainer.max_steps=3", out=tmp_path / "r"))
    fresh = setup(tiny_cfg("trainer.max_steps=3", "resume=false", out=tmp_path / "r"))
    assert fresh.ckpt_path is None
    with pytest.raises(FileNotFoundError, match="resume="):
        setup(tiny_cfg(f"resume={tmp_path}/nope.ckpt", out=tmp_path / "r"))


def _nan_on_calls(monkeypatch, bad_calls: set[int]) -> None:
    original = PixelTarget.forward
    calls = {"n": 0}

    def forward(self, video):
        out = original(self, video)
        calls["n"] += 1
        return out * float("nan") if calls["n"] in bad_calls else out

    monkeypatch.setattr(PixelTarget, "forward", forward)


def test_nonfinite_step_is_skipped_and_counted(tiny_cfg, monkeypatch):
    _nan_on_calls(monkeypatch, {3})
    r = setup(tiny_cfg("trainer.max_steps=5", "model.optimizer.lr=1e-2", "model.scheduler.warmup_steps=0"))
    snapshots = []

    class Snap(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            snapshots.append(pl_module.net.encoder_to_decoder.weight.detach().clone())

    r.trainer.callbacks.append(Snap())
    r.fit()
    assert r.module.nonfinite.total == 1
    assert torch.equal(snapshots[1], snapshots[2])  # batch 3 (NaN) changed nothing
    assert not torch.equal(snapshots[2], snapshots[3])
    assert len(snapshots) == 5  # the skipped batch still counts as a step (and advances the schedule)


def test_too_many_nonfinite_steps_stop_with_a_message(tiny_cfg, monkeypatch):
    _nan_on_calls(monkeypatch, set(range(4, 100)))
    cfg = tiny_cfg("trainer.max_steps=20", "model.max_nonfinite_steps=3", "callbacks.checkpoint.every_n_train_steps=2")
    with pytest.raises(NonFiniteLossError, match=r"3 consecutive non-finite losses, the last at step 5") as err:
        run(cfg)
    assert "step0000002.ckpt" in str(err.value) or "last.ckpt" in str(err.value)


def _train_cmd(out_root: Path, *extra: str) -> tuple[list[str], dict]:
    env = {**os.environ, "SMILE_OUTPUT_ROOT": str(out_root), "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "video=demo",
        "model/encoder=vit_tiny",
        "~callbacks.progress_bar",
        f"hydra.run.dir={out_root}/killtest",
        *extra,
    ]
    return cmd, env


@pytest.mark.slow  # two subprocess runs + a reference run; the in-process resume test covers the default suite
def test_kill_9_loses_only_steps_after_the_last_checkpoint(tiny_cfg, tmp_path):
    steps = [
        "trainer.max_steps=120",
        "trainer.max_epochs=10",
        "data.batch_size=4",
        "data.train_dataset.num_samples=64",
        "callbacks.checkpoint.every_n_train_steps=10",
        "model.optimizer.lr=1e-2",
    ]
    cmd, env = _train_cmd(tmp_path, *steps)
    ckpt_dir = tmp_path / "killtest" / "checkpoints"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(ckpt_dir.glob("step*.ckpt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(sorted(ckpt_dir.glob("*.ckpt"))[-1], weights_only=False)["global_step"]
    assert 10 <= killed_at < 120
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    resumed = ckpt_dir / "last.ckpt"
    assert torch.load(resumed, weights_only=False)["global_step"] == 120

    ref = run(tiny_cfg("video=demo", *steps, out=tmp_path / "ref"))
    assert_same_weights(net_state(ref["last_checkpoint"]), net_state(resumed))


def _list_with_a_broken_video(tmp_path: Path) -> Path:
    from smile_testing import write_video

    for name in ("a", "b", "c"):
        write_video(tmp_path / f"{name}.mp4", 24)
    (tmp_path / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    listing = tmp_path / "train.csv"
    listing.write_text("a.mp4 0\nbroken.mp4 1\nb.mp4 0\nc.mp4 1\n")
    return listing


def test_broken_videos_are_skipped_counted_and_bounded(tiny_cfg, tmp_path):
    listing = _list_with_a_broken_video(tmp_path)
    base = [
        "data=list",
        f"data.train_dataset.list_file='{listing}'",
        "data.num_workers=0",
        "data.batch_size=2",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
    ]
    out = run(tiny_cfg(*base, "data.train_dataset.max_bad_fraction=0.5", out=tmp_path / "ok"))
    assert out["global_step"] == 4  # the run went on
    rows = (tmp_path / "ok" / "csv" / "version_0" / "metrics.csv").read_text()
    assert "data/skipped_videos" in rows
    import csv as _csv

    counts = [
        float(r["data/skipped_videos"])
        for r in _csv.DictReader(open(tmp_path / "ok/csv/version_0/metrics.csv"))
        if r.get("data/skipped_videos")
    ]
    assert counts and max(counts) == 1  # one distinct broken file, however often it was met
    with pytest.raises(RuntimeError, match="broken.mp4"):
        run(
            tiny_cfg(
                *base,
                "data.train_dataset.max_bad_fraction=0.0",
                "data.train_dataset.max_bad_videos=0",
                out=tmp_path / "stop",
            )
        )
