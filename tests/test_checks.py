"""Impossible config values are refused before anything is built, by key, in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate
from smile_testing import TINY, compose_cfg

from smile.checks import ConfigError, check_config
from smile.data import SyntheticVideoDataset, VideoDataModule
from smile.train import CONFIG_DIR, run, setup

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("*.yaml"))
DEBUG = sorted(p.stem for p in Path(CONFIG_DIR, "debug").glob("*.yaml"))

TINY_RATIO = "data.masking.ratio=0.2 masks 0 of the 4 tokens per time slot on the 2x2 grid"
BAD = [  # (overrides, the start of the one-line message)
    (
        ["data.masking.ratio=0.2"],
        TINY_RATIO + " (video.img_size=32, video.patch_size=16): use a ratio that "
        "masks at least one token, e.g. >= 0.25",
    ),
    (["data/masking=trajectory", "data.masking.ratio=0.2"], TINY_RATIO),
    (["data/masking=random", "data.masking.ratio=0.1"], "data.masking.ratio=0.1 masks 0 of the 8 tokens of the 2x2x2"),
    (["video.patch_size=32"], "data.masking.ratio=0.9 masks 0 of the 1 tokens per time slot on the 1x1 grid"),
    (["data.masking.ratio=1.0"], "data.masking.ratio=1.0: must be a number in the open interval (0, 1)"),
    (["data.masking.ratio=0"], "data.masking.ratio=0: must be a number in the open interval (0, 1)"),
    (["data.masking.ratio=abc"], "data.masking.ratio='abc': must be a number"),
    (["data.masking.masks_per_clip=0"], "data.masking.masks_per_clip=0: must be a positive int"),
    (["data/masking=trajectory", "data.masking.traj_unmask_ratio=1.0"], "data.masking.traj_unmask_ratio=1.0: must"),
    (["video.tubelet_size=0"], "video.tubelet_size=0: must be a positive int (frames per token)"),
    (["video.num_frames=0"], "video.num_frames=0: must be a positive int"),
    (["video.img_size=abc"], "video.img_size='abc': must be a positive int"),
    (["video.patch_size=-16"], "video.patch_size=-16: must be a positive int"),
    (["video.sampling_rate=0"], "video.sampling_rate=0: must be a positive int"),
    (["video.num_frames=5"], "video.num_frames=5 is not a multiple of video.tubelet_size=2"),
    (["video.img_size=40"], "video.img_size=40 is not a multiple of video.patch_size=16"),
    (["video.img_size=[32]"], "video.img_size=[32]: must be a positive int or [H, W] of two positive ints"),
    (["video.img_size=[32,0]"], "video.img_size=[32, 0]: must be a positive int or [H, W]"),
    (
        ["video.img_size=[32,48]"],
        "video.img_size=[32, 48]: non-square clips are for AVA detection (model=detector) only; model.kind=pretrain "
        "needs one int, e.g. video.img_size=32",
    ),
    (
        ["model=detector", "video.img_size=[32,40]"],
        "video.img_size=[32, 40] is not a multiple of video.patch_size=16: tokens must",
    ),
    (
        ["model=detector", "~data.masking", "+data.test_size=[32,40]"],
        "data.test_size=[32, 40] is not a multiple of video.patch_size=16 per side: use e.g. data.test_size=[32, 32]",
    ),
    (
        ["model=detector", "~data.masking", "model.loss_mode=focal"],
        "model.loss_mode='focal': must be sigmoid or pose_softmax",
    ),
    (["data.batch_size=abc"], "data.batch_size='abc': must be a positive int (clips per device per step)"),
    (["data.batch_size=0"], "data.batch_size=0: must be a positive int"),
    (["data.batch_size=2.5"], "data.batch_size=2.5: must be a positive int"),
    (["model=classifier", "data.batch_size=0"], "data.batch_size=0: must be a positive int"),
    (["data.num_workers=-1"], "data.num_workers=-1: must be an int >= 0"),
    (["seed=abc"], "seed='abc': must be an int in [0, 4294967295]"),
    (["seed=-1"], "seed=-1: must be an int in [0, 4294967295]"),
    (["trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches=0: must be a positive int"),
    (["trainer.max_steps=abc"], "trainer.max_steps='abc': must be -1 (no step limit) or an int >= 1"),
    (["trainer.max_steps=0"], "trainer.max_steps=0: must be -1"),
    (["trainer.max_epochs=1.5"], "trainer.max_epochs=1.5: must be null, -1 (no epoch limit) or an int >= 1"),
    (["model.optimizer.lr=-1"], "model.optimizer.lr=-1: must be a number > 0 (the lr per 256 samples"),
    (["model.optimizer.lr=0"], "model.optimizer.lr=0: must be a number > 0"),
    (["model.optimizer.lr=abc"], "model.optimizer.lr='abc': must be a number > 0"),
    (["model.scheduler.min_lr=-1"], "model.scheduler.min_lr=-1: must be a number >= 0"),
    (["~data.batch_size"], "data.batch_size is not set: the config must define it"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_value_is_refused_by_key(overrides, message, tmp_path):
    with pytest.raises(ConfigError) as err:
        check_config(compose_cfg([*TINY, *overrides], tmp_path))
    text = str(err.value)
    assert text.startswith(message) and "\n" not in text
    assert "0.0078" not in text  # a bad lr is reported as configured, not scaled by the batch


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["data.masking.ratio=0.25"],  # the smallest tiny-grid ratio that masks a token
        ["model=detector", "~data.masking", "video.img_size=[32,48]"],  # non-square clips (AVA detection)
        ["data.masking.ratio=0.95"],  # 3 of 4 masked: one token per slot stays visible
        ["trainer.max_epochs=null", "trainer.max_steps=-1", "seed=0", "model.scheduler.min_lr=0"],
        ["model=classifier", "~data.masking"],  # classifier data: no masking at all
        ["video=demo", "data/masking=trajectory", "data/motion=objects"],
        *[[f"debug={name}"] for name in DEBUG],
    ],
)
def test_valid_configs_pass(overrides, tmp_path):
    check_config(compose_cfg([*TINY, *overrides], tmp_path))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_passes_as_written(name, tmp_path):
    """Paper geometry and recipes as the files give them; unset paths (``???``) are explain_missing's job."""
    check_config(compose_cfg([f"experiment={name}"], tmp_path))
    check_config(compose_cfg([f"experiment={name}", *TINY], tmp_path))


def test_eval_config_passes(tmp_path):
    check_config(compose_cfg(["experiment=finetune_synthetic"], tmp_path, config_name="eval"))


@pytest.mark.parametrize("masking", ["tube", "random", "trajectory"])
@pytest.mark.parametrize("video", ["tiny", "demo", "default"])
@pytest.mark.parametrize("ratio", [0.01, 0.1, 0.2, 0.25, 0.3, 0.5, 0.9, 0.99])
def test_mask_count_check_matches_the_masking_classes(masking, video, ratio, tmp_path):
    """The check accepts a ratio exactly when the built generator masks >= 1 and leaves >= 1 visible."""
    cfg = compose_cfg([*TINY, f"video={video}", f"data/masking={masking}", f"data.masking.ratio={ratio}"], tmp_path)
    v = cfg.video
    grid = (v.num_frames // v.tubelet_size, v.img_size // v.patch_size, v.img_size // v.patch_size)
    masked = instantiate(cfg.data.masking).num_masked(grid)
    possible = 1 <= masked <= grid[0] * grid[1] * grid[2] - 1
    if possible:
        check_config(cfg)
    else:
        with pytest.raises(ConfigError, match=rf"^data\.masking\.ratio={ratio} masks {masked} of the "):
            check_config(cfg)


def test_batch_larger_than_the_dataset_names_batch_size_dataset_and_devices():
    dm = VideoDataModule(SyntheticVideoDataset(num_samples=10, num_frames=4, img_size=32), batch_size=6)
    assert len(dm.train_dataloader()) == 1  # one device: 10 clips hold a batch of 6
    dm.trainer = type("TwoDevices", (), {"global_rank": 0, "world_size": 2})()  # type: ignore[assignment]
    with pytest.raises(ValueError) as err:
        dm.train_dataloader()
    assert str(err.value) == (
        "data.batch_size=6 is more than the 5 training videos per device (10 on 2 device(s)): use data.batch_size <= 5"
    )


def test_batch_larger_than_the_dataset_stops_the_run_before_training(tmp_path):
    """It used to print "No training batches" and exit 0 with nothing saved."""
    cfg = compose_cfg([*TINY, "data.batch_size=200000"], tmp_path / "run")
    with pytest.raises(ValueError, match=r"^data\.batch_size=200000 is more than the 256 training videos per device "):
        run(cfg)
    assert not list(tmp_path.rglob("*.ckpt"))


def test_setup_refuses_before_building_anything(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.masking\.ratio=0\.2 masks 0 of the 4 tokens"):
        setup(compose_cfg([*TINY, "data.masking.ratio=0.2"], tmp_path))


def test_train_py_stops_before_training_with_the_key(tmp_path):
    env = {**os.environ, "SMILE_OUTPUT_ROOT": str(tmp_path)}
    cmd = [sys.executable, str(ROOT / "train.py"), "data.masking.ratio=0.2", "~callbacks.progress_bar"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert TINY_RATIO in out and "Traceback" not in out, out[-2000:]
    assert not list(tmp_path.rglob("*.ckpt"))
