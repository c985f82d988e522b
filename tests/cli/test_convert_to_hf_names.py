"""`smile-convert to-hf` writes class names into `id2label`: checkpoint, run data, else class_<i>."""

from __future__ import annotations

import json

import pytest
import torch

from smile.cli.convert import main
from smile.data import SyntheticVideoDataset
from smile.models import create_encoder

GEOM = ["--num-frames", "4", "--img-size", "32"]


def id2label(outdir) -> dict[str, str]:
    return json.loads((outdir / "config.json").read_text())["id2label"]


def test_names_from_the_checkpoint(tmp_path):
    pytest.importorskip("transformers")
    clf = create_encoder("vit_tiny_patch16", num_classes=3, num_frames=4, img_size=32)
    torch.save({"model": clf.state_dict(), "class_names": ["walk", "run", "jump"]}, tmp_path / "ft.pth")
    assert main(["to-hf", str(tmp_path / "ft.pth"), str(tmp_path / "hf"), *GEOM]) == 0
    assert id2label(tmp_path / "hf") == {"0": "walk", "1": "run", "2": "jump"}
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["label2id"] == {"walk": 0, "run": 1, "jump": 2}


def test_names_from_the_runs_training_data_else_class_i(tmp_path, capsys):
    pytest.importorskip("transformers")
    clf = create_encoder("vit_tiny_patch16", num_classes=8, num_frames=4, img_size=32)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"model": clf.state_dict()}, ckpt)
    assert main(["to-hf", str(ckpt), str(tmp_path / "plain"), *GEOM]) == 0
    assert id2label(tmp_path / "plain") == {str(i): f"class_{i}" for i in range(8)}
    (tmp_path / "run" / ".hydra").mkdir()
    (tmp_path / "run" / ".hydra" / "config.yaml").write_text(
        "seed: 0\nvideo: {num_frames: 4, img_size: 32}\nmodel: {encoder: {name: vit_tiny_patch16}}\n"
        "data:\n  num_classes: null\n  train_dataset: {_target_: smile.data.SyntheticVideoDataset, num_samples: 8,"
        " num_frames: '${video.num_frames}', img_size: '${video.img_size}', seed: '${seed}'}\n"
    )
    capsys.readouterr()
    assert main(["to-hf", str(ckpt), str(tmp_path / "named")]) == 0
    names = SyntheticVideoDataset(8).class_names
    assert id2label(tmp_path / "named") == {str(i): n for i, n in enumerate(names)} and names[0] == "right-slow"
    assert "id2label from the run's training data" in capsys.readouterr().out
