"""Every experiment composes and instantiates; missing data paths fail with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from smile_testing import TINY, compose_cfg, write_video

from smile.data import VideoDataModule
from smile.lit import PretrainLitModule
from smile.train import CONFIG_DIR, build_module, build_trainer, explain_missing

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("*.yaml"))


def test_there_are_experiments():
    assert {"demo", "videomae_k400_vitb"} <= set(EXPERIMENTS)


def _fill_required(name: str, tmp_path: Path) -> list[str]:
    """Tiny stand-ins for every file an experiment needs: a list, objects, a teacher, a checkpoint."""
    cfg = compose_cfg([f"experiment={name}"], tmp_path / "probe")
    missing = OmegaConf.missing_keys(cfg)
    extra = []
    if "data.train_dataset.list_file" in missing:
        (tmp_path / "clips").mkdir()
        for clip in ("a", "b"):
            write_video(tmp_path / "clips" / f"{clip}.mp4", 24)
        listing = tmp_path / "train.csv"
        listing.write_text("clips/a.mp4 0\nclips/b.mp4 1\n")
        extra.append(f"data.train_dataset.list_file='{listing}'")
    if "data.motion.bank.root_or_packed" in missing:
        extra.append("data/motion/bank=procedural")
    if any(k.endswith("teacher.path") for k in missing):
        extra.append("model/teacher=random")
    if "data.motion.background_images.folder" in missing:
        folder = tmp_path / "images"
        folder.mkdir()
        for i in range(2):
            Image.fromarray(np.full((40, 48, 3), 60 * i, np.uint8)).save(folder / f"{i}.png")
        extra.append(f"data.motion.background_images.folder='{folder}'")
    if "model.init_from" in missing:
        extra.append(f"model.init_from='{_tiny_checkpoint(name, tmp_path, extra)}'")
    return extra


def _tiny_checkpoint(name: str, tmp_path: Path, extra: list[str]) -> Path:
    """A student checkpoint of the tiny geometry, in the official ``{"model": state_dict}`` form."""
    cfg = compose_cfg([f"experiment={name}", *TINY, *extra, "model.init_from=null"], tmp_path / "ckpt")
    path = tmp_path / "stage1.pth"
    torch.save({"model": build_module(cfg).net.state_dict()}, path)
    return path


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name, tmp_path):
    cfg = compose_cfg(
        [f"experiment={name}", *TINY, "data.batch_size=2", *_fill_required(name, tmp_path)], tmp_path / "run"
    )
    explain_missing(cfg)  # nothing left unset
    assert cfg.name == name
    dm = instantiate(cfg.data)
    module = build_module(cfg)
    trainer = build_trainer(cfg)
    assert isinstance(dm, VideoDataModule) and isinstance(module, PretrainLitModule)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    # one real batch through the data module's device-side augmentation and the loss
    batch = next(iter(dm.train_dataloader()))
    batch = dm.on_after_batch_transfer(batch, 0)
    v = cfg.video
    assert batch["video"].shape == (2, 3, v.num_frames, v.img_size, v.img_size)
    assert batch["mask"].shape[:2] == (2, dm.num_mask_views)
    assert ("boxes" in batch) == ("motion" in cfg.data)
    assert torch.isfinite(module.compute_loss(batch["video"], batch["mask"]))


def test_paper_recipe_values():
    cfg = compose_cfg(["experiment=videomae_k400_vitb"], "/tmp/unused")
    assert cfg.model.encoder.name == "vit_base_patch16"
    assert cfg.data.masking.ratio == 0.9 and cfg.model.decoder.depth == 4
    assert cfg.model.target._target_.endswith("PixelTarget") and cfg.model.target.normalize
    assert list(cfg.model.optimizer.betas) == [0.9, 0.95] and cfg.model.optimizer.lr == 1.5e-4
    assert cfg.model.scheduler.warmup_epochs == 40 and cfg.model.scheduler.warmup_steps == -1
    assert cfg.trainer.max_epochs == 800
    assert (cfg.video.num_frames, cfg.video.img_size, cfg.video.sampling_rate) == (16, 224, 4)


def test_missing_data_path_is_named(tmp_path):
    cfg = compose_cfg(["experiment=videomae_k400_vitb"], tmp_path)
    with pytest.raises(SystemExit, match=r"(?s)data\.train_dataset\.list_file.*experiment=videomae_k400_vitb"):
        explain_missing(cfg)


def test_bad_values_fail_at_construction_naming_the_key(tiny_cfg):
    for override, key in [
        ("video.num_frames=5", "num_frames"),
        ("video.img_size=40", "img_size"),
        ("model.encoder.name=vit_giant", "vit_giant"),
    ]:
        with pytest.raises(ValueError, match=key):
            build_module(tiny_cfg(override))
    with pytest.raises(InstantiationException, match=r"(?s)ratio must be in the open interval.*data\.masking"):
        instantiate(tiny_cfg("data.masking.ratio=1.0").data)


def test_command_line_run_and_multirun(tmp_path):
    env = {**os.environ, "SMILE_OUTPUT_ROOT": str(tmp_path)}
    base = [sys.executable, str(ROOT / "train.py"), "-m", "debug=fast", "~callbacks.progress_bar"]
    done = subprocess.run([*base, "data.masking.ratio=0.5,0.75"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted((tmp_path / "multirun" / "default").glob("*/checkpoints/last.ckpt"))
    assert [p.parts[-3] for p in runs] == ["data.masking.ratio=0.5,debug=fast", "data.masking.ratio=0.75,debug=fast"]
    for p in runs:
        assert torch.load(p, weights_only=False)["global_step"] == 5
    missing = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "experiment=videomae_k400_vitb"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0
    assert "data.train_dataset.list_file" in missing.stderr + missing.stdout
