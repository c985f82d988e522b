"""The media callback in tiny training runs: files on disk, dark masked cubes, unchanged training."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image

from smile.callbacks import MediaLogger
from smile.train import setup

SMILE = ["data/motion=objects", "data/masking=trajectory", "data.masking.ratio=0.5", "trainer.log_every_n_steps=1"]
S, T, P = 32, 4, 16  # tiny geometry: 4 frames of 32 px, 16 px patches, tubelets of 2


class Record(L.Callback):
    """Per-step losses, and the first mask view of the first clips at the media steps."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.masks: dict[int, torch.Tensor] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(outputs["loss"].detach().clone())
        self.masks[trainer.global_step] = batch["mask"][:, 0].clone()  # [B, N]


def _fit(cfg) -> Record:
    run = setup(cfg)
    rec = Record()
    run.trainer.callbacks.append(rec)
    run.fit()
    return rec


def _cubes(mask: torch.Tensor) -> np.ndarray:
    """bool [T, S, S] pixel map of a clip's masked tokens (grid 2x2x2, t-major)."""
    m = mask.view(T // 2, S // P, S // P)
    return m.repeat_interleave(2, 0).repeat_interleave(P, 1).repeat_interleave(P, 2).numpy()


def _panel(strip: np.ndarray, row: int) -> np.ndarray:
    """Row ``row`` of a strip as frames [T, S, S, 3]."""
    return strip[row * S : (row + 1) * S].reshape(S, T, S, 3).transpose(1, 0, 2, 3)


def test_media_files_with_the_csv_logger(tiny_cfg):
    cfg = tiny_cfg(*SMILE, "trainer.max_steps=4", "callbacks.media.every_n_steps=2")
    rec = _fit(cfg)
    media = Path(cfg.paths.output_dir) / "media"
    assert sorted(p.name for p in media.glob("*.png")) == [f"step{s:07d}_clip{b}.png" for s in (2, 4) for b in (0, 1)]
    assert len(list(media.glob("*.gif"))) == 4
    for step in (2, 4):
        for b in (0, 1):
            strip = np.asarray(Image.open(media / f"step{step:07d}_clip{b}.png").convert("RGB"))
            assert strip.shape[0] == 4 * S and strip.shape[1] > T * S  # 4 named rows x 4 frames
            strip = strip[:, -T * S :]  # without the column of row names
            objects, masked = _panel(strip, 1), _panel(strip, 2)
            hidden = _cubes(rec.masks[step][b])
            assert 0 < hidden.mean() < 1
            assert (masked[hidden] == 0).all()  # masked cubes black
            assert np.array_equal(masked[~hidden], objects[~hidden])  # visible cubes = the clip with objects
    with open(Path(cfg.paths.output_dir) / "csv" / "version_0" / "metrics.csv") as f:
        norms = [float(r["train/grad_norm"]) for r in csv.DictReader(f) if r.get("train/grad_norm")]
    assert len(norms) == 4 and all(n > 0 for n in norms)


def test_training_is_identical_with_and_without_media(tiny_cfg, tmp_path):
    common = [
        "model=smile",  # feature targets: the PCA panels
        *SMILE,
        "trainer.max_steps=4",
        "model.encoder.drop_path=0.1",  # draws from the global RNG every step
        "model.optimizer.lr=1e-2",
    ]
    with_media = _fit(tiny_cfg(*common, "callbacks.media.every_n_steps=1", out=tmp_path / "on"))
    without = _fit(tiny_cfg(*common, "callbacks.media.every_n_steps=0", out=tmp_path / "off"))
    assert len(with_media.losses) == 4
    assert all(torch.equal(a, b) for a, b in zip(with_media.losses, without.losses, strict=True))
    strips = sorted((tmp_path / "on" / "media").glob("*.png"))
    assert len(strips) == 8 and not (tmp_path / "off" / "media").exists()
    width, height = Image.open(strips[0]).size
    assert height == 5 * S and width > T * S  # input, objects, masked, prediction, teacher; names on the left


def test_media_logger_is_off_at_zero():
    assert not MediaLogger(every_n_steps=0).enabled
    assert MediaLogger(every_n_steps=5).enabled
