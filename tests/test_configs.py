"""Every experiment composes and instantiates; missing data paths fail with a clear message."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image
from smile_testing import TINY, compose_cfg, write_video

from smile.build import CONFIG_DIR, build_datamodule, build_module, build_trainer, explain_missing
from smile.data import VideoDataModule
from smile.data.ava import AvaDataModule, write_synthetic_ava
from smile.data.ava.transforms import as_size
from smile.lit import ClassifierLitModule, DetectionLitModule, PretrainLitModule
from smile.models.detection import ava_loss
from smile.run_dir import run_dir_name

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("*.yaml"))


def test_there_are_experiments():
    assert {"demo", "videomae_k400_vitb"} <= set(EXPERIMENTS)


def _unset_keys(node, prefix: str = "") -> set[str]:
    """Dotted keys whose value is ``???`` (without resolving interpolations, which would raise)."""
    if isinstance(node, dict):
        return set().union(*(_unset_keys(v, f"{prefix}{k}.") for k, v in node.items()))
    return {prefix[:-1]} if node == "???" else set()


def _fill_required(name: str, tmp_path: Path) -> list[str]:
    """Tiny stand-ins for every file an experiment needs: a list, objects, a teacher, a checkpoint."""
    cfg = compose_cfg([f"experiment={name}"], tmp_path / "probe")
    missing = _unset_keys(OmegaConf.to_container(cfg, resolve=False))
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
    if name == "ava_synthetic":  # written under paths.root: a small one
        extra += [f"paths.root='{tmp_path}'", "data.synthetic.num_videos=3", "data.synthetic.val_videos=1"]
    elif name.startswith("ava"):  # AVA: a tiny synthetic AVA in the published layout, small evaluation frames
        extra += ["video.img_size=32", "data.test_size=[32,48]", "data.train_dataset.short_side=32"]
        extra.append(f"data.source.root='{write_synthetic_ava(tmp_path / 'ava', 3, 4).root}'")
    elif "data.source.root" in missing:
        fmt = cfg.data.train_dataset.records_or_list_file.format
        extra.append(f"data.source.root='{_tiny_layout(fmt, tmp_path / fmt)}'")
    if "model.init_from" in missing:
        extra.append(f"model.init_from='{_tiny_checkpoint(name, tmp_path, extra)}'")
    return extra


def _tiny_layout(fmt: str, root: Path) -> Path:
    """Two classes, one train and one val video each, in the dataset's published layout."""
    root.mkdir()
    classes = ["Alpha", "Beta"]
    if fmt == "k400":
        for split, csv in (("train", "train.csv"), ("val", "validate.csv")):
            rows = [f"{c},{split}{c},0,10,{split}" for c in classes]
            (root / csv).write_text("label,youtube_id,time_start,time_end,split\n" + "\n".join(rows) + "\n")
            for c in classes:
                write_video(root / f"{split}{c}_000000_000010.mp4", 24)
    elif fmt == "ssv2":
        (root / "something-something-v2-labels.json").write_text(
            json.dumps({f"{c} something": str(i) for i, c in enumerate(classes)})
        )
        for split, name in (("train", "train"), ("val", "validation")):
            items = [
                {"id": f"{split}{i}", "label": f"{c} x", "template": f"{c} [something]", "placeholders": ["x"]}
                for i, c in enumerate(classes)
            ]
            (root / f"something-something-v2-{name}.json").write_text(json.dumps(items))
            for i in range(len(classes)):
                write_video(root / f"{split}{i}.webm", 24, codec="libvpx-vp9")
    elif fmt == "ucf101":
        (root / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
        (root / "trainlist01.txt").write_text(
            "".join(f"{c}/v_{c}_g01_c01.avi {i + 1}\n" for i, c in enumerate(classes))
        )
        (root / "testlist01.txt").write_text("".join(f"{c}/v_{c}_g02_c01.avi\n" for c in classes))
        for c in classes:
            (root / c).mkdir()
            for g in ("g01", "g02"):
                write_video(root / c / f"v_{c}_{g}_c01.avi", 24)
    elif fmt == "hmdb51":
        for c in classes:
            (root / c).mkdir()
            (root / f"{c}_test_split1.txt").write_text(f"{c}_a.avi 1\n{c}_b.avi 2\n")
            for v in ("a", "b"):
                write_video(root / c / f"{c}_{v}.avi", 24)
    return root


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
    dm = build_datamodule(cfg)
    module = build_module(cfg)
    trainer = build_trainer(cfg)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    if isinstance(dm, AvaDataModule):  # detection: a real batch of person boxes through the detector's loss
        assert isinstance(module, DetectionLitModule)
        dm.prepare_data()
        dm.setup("fit")
        batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
        assert batch["video"].shape[1:] == (3, cfg.video.num_frames, *as_size(cfg.video.img_size))
        logits = module.net(batch["video"], batch["boxes"])
        assert torch.isfinite(ava_loss(logits, torch.cat(batch["labels"]), module.loss_mode))
        test = dm.on_after_batch_transfer(next(iter(dm.test_dataloader())), 0)
        assert test["video"].shape[-2:] == as_size(cfg.data.test_size)
        assert module.net(test["video"], test["boxes"]).shape[1] == 80
        return
    assert isinstance(dm, VideoDataModule) and isinstance(module, (PretrainLitModule, ClassifierLitModule))
    # one real batch through the data module's device-side augmentation and the loss
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    v = cfg.video
    assert batch["video"].shape[1:] == (3, v.num_frames, v.img_size, v.img_size)
    if isinstance(module, ClassifierLitModule):
        assert torch.isfinite(F.cross_entropy(module.net(batch["video"]), batch["label"]))
        if dm.test_dataset is not None:  # every multi-view test item decodes
            views = dm.on_after_batch_transfer(next(iter(dm.test_dataloader())), 0)["video"]
            assert views.ndim in (5, 6) and views.dtype == torch.float32
        return
    assert batch["mask"].shape[:2] == (2, dm.num_mask_views)
    assert ("boxes" in batch) == ("motion" in cfg.data)
    assert torch.isfinite(module.compute_loss(batch["video"], batch["mask"]))


def test_paper_recipe_values():
    cfg = compose_cfg(["experiment=videomae_k400_vitb"], "/tmp/unused")
    assert cfg.model.encoder.name == "vit_base_patch16"
    assert cfg.data.masking.ratio == 0.9 and cfg.model.decoder.depth == 4
    assert cfg.model.target._target_.endswith("PixelTarget") and cfg.model.target.normalize
    assert list(cfg.model.optimizer.betas) == [0.9, 0.95] and cfg.model.optimizer.lr == 1.5e-4
    assert cfg.model.scheduler.min_lr == 1.0e-5
    assert cfg.model.scheduler.warmup_epochs == 40 and cfg.model.scheduler.warmup_steps == -1
    assert cfg.trainer.max_epochs == 800
    assert (cfg.video.num_frames, cfg.video.img_size, cfg.video.sampling_rate) == (16, 224, 4)


def test_missing_data_path_is_named(tmp_path):
    cfg = compose_cfg(["experiment=videomae_k400_vitb"], tmp_path)
    with pytest.raises(SystemExit, match=r"(?s)data\.train_dataset\.list_file.*experiment=videomae_k400_vitb"):
        explain_missing(cfg)


@pytest.mark.parametrize("name", ["ava_vitb_finetune", "finetune_ucf101_vitb"])
def test_a_root_missing_behind_an_interpolation_is_named(name, tmp_path):
    """data.train_dataset.frames -> data.source.frames -> data.source.root: the unset key is the root."""
    with pytest.raises(SystemExit, match=rf"(?s)`data\.source\.root` is required.*experiment={name} data\.source"):
        explain_missing(compose_cfg([f"experiment={name}"], tmp_path))


def test_bad_values_fail_at_construction_naming_the_key(tiny_cfg):
    for override, key in [
        ("video.num_frames=5", "num_frames"),
        ("video.img_size=40", "img_size"),
        ("model.encoder.name=vit_giant", "vit_giant"),
    ]:
        with pytest.raises(InstantiationException, match=rf"(?s){key}.*full_key: model\.encoder"):
            build_module(tiny_cfg(override))
    with pytest.raises(InstantiationException, match=r"(?s)ratio must be in the open interval.*data\.masking"):
        instantiate(tiny_cfg("data.masking.ratio=1.0").data)


def test_command_line_run_and_multirun(tmp_path):
    env = {**os.environ, "SMILE_OUTPUT_ROOT": str(tmp_path)}
    base = [sys.executable, str(ROOT / "train.py"), "-m", "debug=fast", "~callbacks.progress_bar"]
    done = subprocess.run([*base, "data.masking.ratio=0.5,0.75"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted((tmp_path / "multirun" / "default").glob("*/checkpoints/last.ckpt"))
    names = [p.parts[-3] for p in runs]  # <last key part>-<value>, then a hash of the job's overrides
    assert [re.sub(r"_[0-9a-f]{8}$", "", n) for n in names] == ["ratio-0.5_debug-fast", "ratio-0.75_debug-fast"]
    assert names == [run_dir_name([f"data.masking.ratio={r}", "debug=fast"]) for r in ("0.5", "0.75")]
    for p, ratio in zip(runs, ("0.5", "0.75"), strict=True):
        assert torch.load(p, weights_only=False)["global_step"] == 5
        command = (p.parents[1] / "command.txt").read_text()
        assert f"# this job alone: python {ROOT / 'train.py'} debug=fast '~callbacks.progress_bar=null'" in command
        assert command.rstrip().endswith(f"data.masking.ratio={ratio}")
    missing = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "experiment=videomae_k400_vitb"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0
    assert "data.train_dataset.list_file" in missing.stderr + missing.stdout


TYPO_EXPERIMENT = """# @package _global_
defaults:
  - /experiment/demo
  - _self_
model:
  optimizer:
    lrr: 1.0e-3
"""


def test_a_mistyped_optimizer_key_in_a_yaml_file_fails_before_training_naming_it(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "typo.yaml").write_text(TYPO_EXPERIMENT)
    cfg = compose_cfg([f"hydra.searchpath=[file://{tmp_path}]", "experiment=typo", *TINY], tmp_path / "run")
    assert cfg.model.optimizer.lrr == 1.0e-3  # the YAML merged it (nothing checks keys while composing) ...
    with pytest.raises(ValueError, match=r"model\.optimizer\.lrr: AdamW has no argument 'lrr'"):
        build_module(cfg)  # ... and building the module, before any trainer exists, refuses it


def test_a_mistyped_scheduler_key_fails_at_build_naming_it(tmp_path):
    cfg = compose_cfg([*TINY, "+model.scheduler.warmup_step=3"], tmp_path)
    with pytest.raises(InstantiationException, match=r"(?s)warmup_step.*model\.scheduler"):
        build_module(cfg)


def test_a_mistyped_optimizer_key_on_the_command_line_fails_before_training(tmp_path):
    env = {**os.environ, "SMILE_OUTPUT_ROOT": str(tmp_path)}
    for override in ("model.optimizer.lrr=1e-3", "+model.optimizer.lrr=1e-3"):
        done = subprocess.run(
            [sys.executable, str(ROOT / "train.py"), "debug=fast", override],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        out = done.stdout + done.stderr
        assert done.returncode != 0 and "lrr" in out, out[-2000:]
        assert not list(tmp_path.rglob("*.ckpt")), "nothing may train"
