"""Checkpoints remember what they were trained on; eval, init_from and smile-convert use it (issue 13 item 3)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest
import torch
from smile_testing import TINY, compose_cfg

from smile.build import build_classifier
from smile.cli.convert import main as convert_main
from smile.eval import evaluate
from smile.provenance import ProvenanceMismatch, geometry_from_flags, overridden_keys, read_provenance
from smile.train import setup
from smile.video import IMAGENET_MEAN, IMAGENET_STD

FINETUNE = [
    "experiment=finetune_synthetic",
    *TINY,
    "data.train_dataset.num_samples=16",
    "data.batch_size=8",
    "data.val_dataset.num_samples=8",
    "data.test_dataset.num_samples=8",
    "trainer.max_epochs=1",
    "callbacks.media.every_n_steps=0",
]
SYNTHETIC_NAMES = [f"{d}-{s}" for d in ("right", "left", "down", "up") for s in ("slow", "fast")]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``last.ckpt`` of a tiny finetuning run: 4 frames of 32 px, 8 synthetic classes."""
    run = setup(compose_cfg(FINETUNE, tmp_path_factory.mktemp("ft")))
    return Path(run.fit()["last_checkpoint"])


def _eval_cfg(ckpt: Path, out: Path, *extra: str):
    return compose_cfg([*FINETUNE, f"ckpt={ckpt}", *extra], out, config_name="eval")


def test_last_checkpoint_records_geometry_classes_normalisation_and_encoder(ckpt):
    record = read_provenance(ckpt)
    assert record is not None
    assert record["video"] == {"num_frames": 4, "img_size": 32, "patch_size": 16, "tubelet_size": 2, "sampling_rate": 4}
    assert record["normalization"] == {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    assert record["encoder"] == {"name": "vit_tiny_patch16", "overrides": {"embed_dim": 64, "depth": 4, "num_heads": 4}}
    assert len(record["class_names"]) == 8 and record["class_names"][:2] == ["right-slow", "right-fast"]


def test_contradicting_geometry_is_refused_naming_both_values(ckpt, tmp_path):
    cfg = _eval_cfg(ckpt, tmp_path / "a", "video.num_frames=8")
    with pytest.raises(ProvenanceMismatch) as err:  # a library call: every config value counts as set
        evaluate(cfg)
    assert str(err.value) == (
        f"video.num_frames=8 in the config but {ckpt} was trained with 4: use the checkpoint's value, "
        "or add allow_geometry_change=true to evaluate at another geometry"
    )
    cfg = _eval_cfg(ckpt, tmp_path / "b", "video.num_frames=8")
    with pytest.raises(ProvenanceMismatch) as err:  # what main passes: Hydra's task overrides
        evaluate(cfg, overrides=["experiment=finetune_synthetic", "video.num_frames=8", f"ckpt={ckpt}"])
    assert str(err.value) == (
        f"video.num_frames=8 on the command line but {ckpt} was trained with 4: drop the override, "
        "or add allow_geometry_change=true to evaluate at another geometry"
    )


def test_allow_geometry_change_evaluates_at_the_asked_geometry(ckpt, tmp_path, caplog):
    cfg = _eval_cfg(ckpt, tmp_path / "ev", "video.num_frames=8", "allow_geometry_change=true")
    with caplog.at_level(logging.WARNING, logger="smile.provenance"):
        metrics = evaluate(cfg)
    assert metrics["num_videos"] == 8 and cfg.video.num_frames == 8
    assert f"video.num_frames=8 although {ckpt} was trained with 4" in caplog.text


def test_geometry_not_on_the_command_line_comes_from_the_checkpoint(ckpt, tmp_path):
    right = evaluate(_eval_cfg(ckpt, tmp_path / "right"))
    cfg = _eval_cfg(ckpt, tmp_path / "taken", "video.num_frames=8", "video.img_size=64")  # e.g. the experiment's
    taken = evaluate(cfg, overrides=["experiment=finetune_synthetic", f"ckpt={ckpt}"])  # the user typed only ckpt
    assert (cfg.video.num_frames, cfg.video.img_size) == (4, 32)
    assert taken == right


def test_init_from_at_another_geometry_warns_with_both_values(ckpt, tmp_path, caplog):
    cfg = compose_cfg([*FINETUNE, "video.num_frames=8", f"model.init_from={ckpt}"], tmp_path / "ft2")
    with caplog.at_level(logging.WARNING, logger="smile.provenance"):
        build_classifier(cfg)
    assert f"model.init_from: video.num_frames=8 but {ckpt} was trained with 4" in caplog.text


def test_to_hf_refuses_a_frame_count_the_checkpoint_contradicts(ckpt, tmp_path, capsys):
    assert convert_main(["to-hf", str(ckpt), str(tmp_path / "hf"), "--num-frames", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"smile-convert to-hf: error: --num-frames 8 on the command line but {ckpt} was trained with "
        "video.num_frames=4: drop the flag, or add --allow-geometry-change to use another geometry"
    )


def test_official_pth_has_no_provenance(tmp_path):
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": {"w": torch.zeros(2)}, "args": argparse.Namespace(num_frames=16)}, path)
    assert read_provenance(path) is None


def test_overridden_keys_and_flags():
    keys = overridden_keys(["video=demo", "+video.num_frames=8", "model/encoder=vit_base", "~callbacks.media"])
    assert keys == ["video", "video.num_frames", "model.encoder", "callbacks.media"]
    record = {"video": {"num_frames": 8, "img_size": 64, "patch_size": 16, "tubelet_size": 2, "sampling_rate": 4}}
    flags = {"num_frames": ("--frames", None), "img_size": ("--size", 64)}
    assert geometry_from_flags(record, "x.ckpt", flags, allow=False)["num_frames"] == 8
    assert geometry_from_flags(None, "x.pth", flags, allow=False) == {"img_size": 64}
    with pytest.raises(ProvenanceMismatch, match="--size 32 on the command line but x.ckpt was trained with"):
        geometry_from_flags(record, "x.ckpt", {"img_size": ("--size", 32)}, allow=False)


def test_smile_vis_refuses_a_size_the_checkpoint_contradicts(ckpt, tmp_path, capsys):
    from omegaconf import OmegaConf

    from smile.cli.vis import main as vis_main

    config = tmp_path / "config.yaml"
    OmegaConf.save(compose_cfg(FINETUNE, tmp_path / "run"), config)
    args = [str(ckpt), str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "out"), "--config", str(config)]
    assert vis_main([*args, "--size", "64"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"smile-vis: error: --size 64 on the command line but {ckpt} was trained with video.img_size=32: "
        "drop the flag, or add --allow-geometry-change to use another geometry"
    )
