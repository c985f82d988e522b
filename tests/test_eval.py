"""Finetuning through train.py and multi-view evaluation through eval.py on the synthetic videos."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from smile_testing import TINY, compose_cfg

from smile.eval import evaluate, merge_predictions, metrics_from_predictions, write_outputs
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
    assert saved["num_videos"] == 20
    matrix = list(csv.reader(open(tmp_path / "ev" / "confusion_matrix.csv")))  # header row + 8 named rows
    assert matrix[0][0] == "true \\ predicted" and len(matrix) == 9 and [r[0] for r in matrix[1:]] == matrix[0][1:]
    assert sum(int(x) for row in matrix[1:] for x in row[1:]) == 20
    assert Image.open(tmp_path / "ev" / "confusion_matrix.png").size[0] > 8 * 48  # 8 named classes x 48 px + labels
    logged = list(csv.DictReader(open(tmp_path / "ev" / "csv" / "version_0" / "metrics.csv")))  # logger=csv
    per_class = {k: float(v) for row in logged for k, v in row.items() if k.startswith("test/class_acc/") and v}
    assert len(per_class) == 8 and any(r.get("test/acc1") for r in logged)
    assert sum(per_class.values()) / 8 == pytest.approx(test["test/acc1_class_mean"], abs=1e-6)


def test_merge_predictions_drops_padding_duplicates():
    rows = [{"video_id": 1, "pred": 0}, {"video_id": 2, "pred": 1}, {"video_id": 1, "pred": 0}]
    assert merge_predictions(rows) == rows[:2]


def _row(video_id: int, label: int, top5: list[int]) -> dict:
    return {"video_id": video_id, "label": label, "pred": top5[0], "top5": top5, "top5_prob": [0.2] * len(top5)}


def test_metrics_from_predictions_counts_each_video_once():
    rows = [
        _row(0, 0, [0, 1, 2, 3, 4]),  # top-1 hit
        _row(1, 0, [2, 0, 1, 3, 4]),  # top-5 hit only
        _row(2, 1, [1, 0, 2, 3, 4]),  # top-1 hit
        _row(3, 2, [0, 1, 3, 4, 5]),  # miss
        _row(4, 2, [2, 0, 1, 3, 4]),  # top-1 hit
        _row(3, 2, [0, 1, 3, 4, 5]),  # the sampler's padding: video 3 again
    ]
    padded, _ = metrics_from_predictions(rows, num_classes=6)
    assert padded["test/acc1"] == pytest.approx(3 / 6)  # what counting the duplicate gives

    metrics, confusion = metrics_from_predictions(merge_predictions(rows), num_classes=6)
    assert metrics == pytest.approx(
        {
            "test/acc1": 3 / 5,
            "test/acc5": 4 / 5,
            "test/acc1_class_mean": (1 / 2 + 1 + 1 / 2) / 3,  # classes 3-5 never occur nor are predicted
            "test/acc5_class_mean": (1 + 1 + 1 / 2) / 3,
        },
        abs=1e-12,
    )
    expected = torch.zeros(6, 6, dtype=torch.int64)
    for label, pred in [(0, 0), (0, 2), (1, 1), (2, 0), (2, 2)]:
        expected[label, pred] += 1  # rows = true class
    assert confusion.dtype == torch.int64 and torch.equal(confusion, expected)


def test_metrics_from_predictions_matches_the_modules_torchmetrics():
    """Key for key as ClassifierLitModule logs them, absent classes (and fewer than 5 classes) included."""
    from torchmetrics.classification import MulticlassConfusionMatrix

    from smile.metrics import accuracy_metrics

    # 4 classes, so "top5" holds 4; class 3 never occurs but is the top-1 guess of one video, which
    # torchmetrics' macro top-1 average counts (recall 0) and its top-k average does not.
    probs = torch.tensor(
        [
            [0.7, 0.1, 0.1, 0.1],
            [0.1, 0.2, 0.3, 0.4],
            [0.2, 0.5, 0.2, 0.1],
            [0.3, 0.4, 0.2, 0.1],
            [0.1, 0.1, 0.6, 0.2],
            [0.4, 0.3, 0.1, 0.2],
        ]
    )
    labels = torch.tensor([0, 1, 1, 2, 2, 2])
    top = probs.topk(4, dim=-1).indices
    rows = [_row(i, int(y), top[i].tolist()) for i, y in enumerate(labels)]
    metrics, confusion = metrics_from_predictions(rows, num_classes=4)

    micro, macro, confmat = accuracy_metrics(4), accuracy_metrics(4, average="macro"), MulticlassConfusionMatrix(4)
    for metric in (micro, macro):
        metric.update(probs, labels)
    confmat.update(probs.argmax(-1), labels)
    expected = {f"test/{k}": float(v) for k, v in micro.compute().items()}
    expected |= {f"test/{k}_class_mean": float(v) for k, v in macro.compute().items()}
    assert metrics == pytest.approx(expected, abs=1e-6)
    assert metrics["test/acc1_class_mean"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 0) / 4)
    assert metrics["test/acc5"] == 1.0 and metrics["test/acc5_class_mean"] == 1.0
    assert torch.equal(confusion, confmat.compute())


def test_metrics_from_predictions_rejects_unknown_labels():
    with pytest.raises(ValueError, match="outside"):
        metrics_from_predictions([_row(0, -1, [0, 1, 2])], num_classes=3)


def test_eval_needs_a_checkpoint(tmp_path):
    with pytest.raises(SystemExit, match="ckpt"):
        evaluate(compose_cfg(FINETUNE, tmp_path, config_name="eval"))


def test_eval_refuses_a_pretraining_checkpoint(tmp_path):
    from smile.models import create_pretrain_model

    student = create_pretrain_model("vit_tiny_patch16", num_frames=4, img_size=32, embed_dim=64, depth=4, num_heads=4)
    path = tmp_path / "pre.pth"
    torch.save({"model": student.state_dict()}, path)
    with pytest.raises(ValueError, match="not a finetuned classifier"):
        evaluate(compose_cfg([*FINETUNE, f"ckpt={path}"], tmp_path / "e", config_name="eval"))
    assert Path(path).exists()


def test_write_outputs_puts_class_names_next_to_every_index(tmp_path):
    names = ["walk", "run", "jump, high"]  # a comma: CSV quoting and JSON lists must hold it
    rows = [
        {"video_id": "a", "label": 0, "pred": 0, "top5": [0, 2, 1], "top5_prob": [0.5, 0.3, 0.2]},
        {"video_id": "b", "label": 2, "pred": 1, "top5": [1, 2, 0], "top5_prob": [0.6, 0.3, 0.1]},
    ]
    _, confusion = metrics_from_predictions(rows, num_classes=3)
    module = SimpleNamespace(num_classes=3, test_predictions=rows, test_confusion=confusion)
    write_outputs(tmp_path, {"test/acc1": 0.5}, module, rows, confusion, class_names=names)  # type: ignore[arg-type]
    with open(tmp_path / "predictions.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["video_id", "label", "label_name", "pred", "pred_name", "top5", "top5_names", "top5_prob"]
    assert table[2] == [
        "b",
        "2",
        "jump, high",
        "1",
        "run",
        "[1, 2, 0]",
        '["run", "jump, high", "walk"]',
        "[0.6, 0.3, 0.1]",
    ]
    with open(tmp_path / "confusion_matrix.csv", newline="") as f:
        matrix = list(csv.reader(f))
    assert matrix[0] == ["true \\ predicted", "walk", "run", "jump, high"]
    assert matrix[3] == ["jump, high", "0", "1", "0"]
    image = Image.open(tmp_path / "confusion_matrix.png")
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    assert image.size[0] > 3 * 48 and len(np.unique(pixels, axis=0)) > 10  # labelled, not blank
    write_output = tmp_path / "default"
    write_outputs(write_output, {}, module, rows, confusion)  # type: ignore[arg-type]
    assert list(csv.reader(open(write_output / "confusion_matrix.csv")))[0][1:] == ["class_0", "class_1", "class_2"]


def test_log_confusion_keys_per_class_accuracy_by_name(tmp_path):
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from smile.callbacks.loggers import log_confusion

    matrix = torch.tensor([[3, 1, 0], [0, 2, 0], [1, 1, 2]])
    csv_logger, tb = CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb")
    metrics = log_confusion(
        [csv_logger, tb], matrix, torch.zeros(4, 4, 3, dtype=torch.uint8), class_names=["walk", "run", "a/b"]
    )
    assert metrics == {"test/class_acc/walk": 0.75, "test/class_acc/run": 1.0, "test/class_acc/a_b": 0.5}
    logged = list(csv.DictReader(open(Path(csv_logger.log_dir) / "metrics.csv")))
    assert float(logged[0]["test/class_acc/run"]) == 1.0
    assert log_confusion([], matrix, torch.zeros(4, 4, 3, dtype=torch.uint8))["test/class_acc/class_2"] == 0.5
