"""Finetuning through train.py and multi-view evaluation through eval.py on the synthetic videos."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image
from smile_testing import TINY, compose_cfg

from smile.eval import evaluate, merge_predictions
from smile.train import setup

FINETUNE = [
    "experiment=finetune_synthetic",
    *TINY,
    "data.train_dataset.num_samples=64",
    "data.batch_size=8",
    "data.val_dataset.num_samples=24",
    "data.test_dataset.num_samples=20",
    "trainer.max_epochs=2",
]


def test_eval_reproduces_the_validation_accuracy_logged_in_training(tmp_path):
    run = setup(compose_cfg(FINETUNE, tmp_path / "ft"))
    out = run.fit()
    logged = float(run.trainer.callback_metrics["val/acc1"])
    ckpt = out["last_checkpoint"]

    val = evaluate(compose_cfg([*FINETUNE, f"ckpt={ckpt}", "split=val"], tmp_path / "ev_val", config_name="eval"))
    assert val["test/acc1"] == pytest.approx(logged, abs=1e-6)

    test = evaluate(compose_cfg([*FINETUNE, f"ckpt={ckpt}"], tmp_path / "ev", config_name="eval"))
    assert set(test) >= {"test/acc1", "test/acc5", "test/acc1_class_mean"}
    rows = list(csv.DictReader(open(tmp_path / "ev" / "predictions.csv")))
    assert len(rows) == 20 and len({r["video_id"] for r in rows}) == 20
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["test/acc1"] == pytest.approx(sum(r["pred"] == r["label"] for r in rows) / 20)
    matrix = list(csv.reader(open(tmp_path / "ev" / "confusion_matrix.csv")))
    assert len(matrix) == 8 and sum(int(float(x)) for row in matrix for x in row) == 20
    assert Image.open(tmp_path / "ev" / "confusion_matrix.png").size == (256, 256)  # 8 classes x 32 px
    logged = list(csv.DictReader(open(tmp_path / "ev" / "csv" / "version_0" / "metrics.csv")))  # logger=csv
    per_class = {k: float(v) for row in logged for k, v in row.items() if k.startswith("test/class_acc/") and v}
    assert len(per_class) == 8 and any(r.get("test/acc1") for r in logged)
    assert sum(per_class.values()) / 8 == pytest.approx(test["test/acc1_class_mean"], abs=1e-6)


def test_merge_predictions_drops_padding_duplicates():
    rows = [{"video_id": 1, "pred": 0}, {"video_id": 2, "pred": 1}, {"video_id": 1, "pred": 0}]
    assert merge_predictions(rows) == rows[:2]


def test_eval_needs_a_checkpoint(tmp_path):
    with pytest.raises(SystemExit, match="ckpt"):
        evaluate(compose_cfg(FINETUNE, tmp_path, config_name="eval"))


def test_eval_refuses_a_pretraining_checkpoint(tmp_path):
    import torch

    from smile.models import create_pretrain_model

    student = create_pretrain_model("vit_tiny_patch16", num_frames=4, img_size=32, embed_dim=64, depth=4, num_heads=4)
    path = tmp_path / "pre.pth"
    torch.save({"model": student.state_dict()}, path)
    with pytest.raises(ValueError, match="not a finetuned classifier"):
        evaluate(compose_cfg([*FINETUNE, f"ckpt={path}"], tmp_path / "e", config_name="eval"))
    assert Path(path).exists()
