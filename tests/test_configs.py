"""Every experiment composes and instantiates; missing data paths fail with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from smile_testing import TINY, compose_cfg

from smile.data import VideoDataModule
from smile.lit import PretrainLitModule
from smile.train import CONFIG_DIR, build_module, build_trainer, explain_missing

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("*.yaml"))


def test_there_are_experiments():
    assert {"demo", "videomae_k400_vitb"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name, tmp_path):
    listing = tmp_path / "train.csv"
    listing.write_text("clips/a.mp4 0\nclips/b.mp4 1\n")
    cfg = compose_cfg(
        [f"experiment={name}", *TINY, "data.batch_size=2", f"data.train_dataset.list_file='{listing}'"]
        if _needs_list(name)
        else [f"experiment={name}", *TINY, "data.batch_size=2"],
        tmp_path / "run",
    )
    explain_missing(cfg)  # nothing left unset
    assert cfg.name == name
    dm = instantiate(cfg.data)
    module = build_module(cfg)
    trainer = build_trainer(cfg)
    assert isinstance(dm, VideoDataModule) and isinstance(module, PretrainLitModule)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    # the tiny student runs on a batch of the configured geometry
    v = cfg.video
    video = torch.randn(2, 3, v.num_frames, v.img_size, v.img_size)
    mask = dm.masking(2, dm.token_grid(video.shape))
    loss = module.compute_loss(video, mask)
    assert torch.isfinite(loss)


def _needs_list(name: str) -> bool:
    cfg = compose_cfg([f"experiment={name}"], "/tmp/unused")
    return "list_file" in cfg.data.train_dataset.keys()  # `in` on the node is False for ??? values


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
