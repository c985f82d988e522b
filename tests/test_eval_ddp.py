"""Two-process (gloo, CPU) evaluation writes exactly the single-process results despite the sampler's padding."""

from __future__ import annotations

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from smile_testing import TINY, compose_cfg

from smile.eval import evaluate
from smile.train import build_module

ROOT = Path(__file__).resolve().parents[1]
NUM_VIDEOS = 21  # odd: two ranks get 11 each, the last shard padded with video 0
EVAL = [
    "experiment=finetune_synthetic",
    "video=tiny",
    "model/encoder=vit_tiny",
    "data.batch_size=4",
    f"data.test_dataset.num_samples={NUM_VIDEOS}",
]


def _classifier_checkpoint(path: Path) -> Path:
    """A random classifier with a large head, so the predictions are far from ties (and vary by video)."""
    torch.manual_seed(0)
    module = build_module(compose_cfg([*TINY, *EVAL, "ckpt=unused"], path.parent / "build", config_name="eval"))
    sd = module.state_dict()
    sd["net.head.weight"] = torch.randn(sd["net.head.weight"].shape, generator=torch.Generator().manual_seed(0))
    torch.save({"state_dict": sd}, path)
    return path


@pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()), reason="no gloo backend"
)
def test_two_process_eval_writes_the_single_process_results(tmp_path, caplog):
    ckpt = _classifier_checkpoint(tmp_path / "clf.ckpt")
    env = {**os.environ, "SMILE_OUTPUT_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        str(ROOT / "eval.py"),
        *EVAL,
        "trainer=cpu",
        "data.num_workers=0",
        f"ckpt={ckpt}",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        f"hydra.run.dir={tmp_path}/ddp",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    with caplog.at_level(logging.WARNING, logger="smile.eval"):
        single = evaluate(compose_cfg([*TINY, *EVAL, f"ckpt={ckpt}"], tmp_path / "single", config_name="eval"))
    assert "padded duplicates" not in caplog.text  # one process: no padding

    ddp = tmp_path / "ddp"
    saved = json.loads((ddp / "metrics.json").read_text())
    rows = list(csv.DictReader(open(ddp / "predictions.csv")))
    assert saved["num_videos"] == single["num_videos"] == NUM_VIDEOS
    assert sorted(int(r["video_id"]) for r in rows) == list(range(NUM_VIDEOS))  # one row per video
    assert saved["test/acc1"] == pytest.approx(sum(r["pred"] == r["label"] for r in rows) / NUM_VIDEOS, abs=1e-12)
    hit5 = {int(r["video_id"]): int(r["label"]) in json.loads(r["top5"]) for r in rows}
    assert saved["test/acc5"] == pytest.approx(sum(hit5.values()) / NUM_VIDEOS, abs=1e-12)
    by_class: dict[int, list[bool]] = {}
    for r in rows:
        by_class.setdefault(int(r["label"]), []).append(hit5[int(r["video_id"])])
    recall5 = [sum(hits) / len(hits) for hits in by_class.values()]
    assert saved["test/acc5_class_mean"] == pytest.approx(sum(recall5) / len(recall5), abs=1e-12)
    for key in ("test/acc1", "test/acc5", "test/acc1_class_mean", "test/acc5_class_mean"):
        assert saved[key] == pytest.approx(single[key], abs=1e-12), key

    def counts(path: Path) -> list[list[int]]:  # without the header row and the class-name column
        return [[int(x) for x in row[1:]] for row in list(csv.reader(open(path)))[1:]]

    matrix = counts(ddp / "confusion_matrix.csv")
    assert matrix == counts(tmp_path / "single" / "confusion_matrix.csv")
    assert sum(map(sum, matrix)) == NUM_VIDEOS
    # test_step's torchmetrics counted the padded copy of video 0 (its confusion matrix sums to 22): said so
    assert "padded duplicates in distributed evaluation (1 of 22" in (ddp / "eval.log").read_text()
