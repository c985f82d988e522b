"""Hydra entry point for evaluation: a classifier checkpoint -> multi-view test metrics and predictions.

``python eval.py experiment=finetune_k400_vitb ckpt=<run>/checkpoints/last.ckpt`` evaluates with the
experiment's data and test views and writes ``metrics.json``, ``predictions.csv`` (one row per video),
``confusion_matrix.csv`` and ``confusion_matrix.png`` to the run directory; configured loggers also
get the metrics, per-class accuracy and the confusion-matrix image.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from smile.callbacks.loggers import finish_wandb, log_confusion
from smile.callbacks.media import confusion_image, write_png
from smile.lit import ClassifierLitModule
from smile.models import load_encoder_weights, read_state_dict
from smile.train import CONFIG_DIR, build_loggers, build_module, explain_missing, log_run_config, resolve_weights

log = logging.getLogger(__name__)


def load_classifier_checkpoint(module: ClassifierLitModule, path: str | Path) -> None:
    """Weights of a Lightning classifier ``.ckpt`` (strict), or an official finetuned ``.pth``."""
    sd = read_state_dict(path)
    if any(k.startswith("net.") for k in sd):
        own = {k: v for k, v in sd.items() if k.startswith("net.")}
        module.net.load_state_dict({k.removeprefix("net."): v for k, v in own.items()}, strict=True)
    else:
        report = load_encoder_weights(module.net, path)
        if report.missing:
            raise ValueError(f"{path} is not a finetuned classifier: missing {report.missing}")


def merge_predictions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per video: distributed shards repeat padded videos; the first occurrence wins."""
    seen: dict[Any, dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(row["video_id"], row)
    return list(seen.values())


def gather_predictions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rank's per-video rows on every rank (a no-op in one process); duplicates are merged later."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return rows
    shards: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(shards, rows)
    return [row for shard in shards for row in shard]


def write_outputs(out_dir: Path, metrics: dict[str, float], module: ClassifierLitModule) -> None:
    """``metrics.json``, ``predictions.csv`` and ``confusion_matrix.csv`` / ``.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    rows = merge_predictions(module.test_predictions)
    if rows:
        with open(out_dir / "predictions.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if module.test_confusion is not None:
        with open(out_dir / "confusion_matrix.csv", "w", newline="") as f:
            csv.writer(f).writerows(module.test_confusion.tolist())
        write_png(out_dir / "confusion_matrix.png", confusion_image(module.test_confusion))


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Build data and classifier from ``cfg``, load ``cfg.ckpt``, test; returns the metrics."""
    explain_missing(cfg)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    if not isinstance(module, ClassifierLitModule):
        raise SystemExit("eval.py evaluates classifiers: pick a finetune/probe experiment (model=classifier)")
    load_classifier_checkpoint(module, resolve_weights(cfg, cfg.ckpt))
    loggers = build_loggers(cfg)
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=[], enable_checkpointing=False)
    log_run_config(trainer.loggers, cfg)
    if cfg.get("split", "test") == "val":
        datamodule.test_dataset = datamodule.val_dataset  # the fixed centre clip of validation
    trainer.test(module, datamodule=datamodule)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test")}
    module.test_predictions = gather_predictions(module.test_predictions)
    if trainer.is_global_zero:
        write_outputs(Path(cfg.paths.output_dir), metrics, module)
        if module.test_confusion is not None:  # per-class accuracy and the matrix image, where loggers take them
            log_confusion(trainer.loggers, module.test_confusion, confusion_image(module.test_confusion))
        finish_wandb(trainer.loggers)
        log.info("test metrics: %s (written to %s)", metrics, cfg.paths.output_dir)
        print(json.dumps(metrics, indent=2), f"\noutputs: {cfg.paths.output_dir}", flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    """Console entry point (``python eval.py`` / ``smile-eval``)."""
    evaluate(cfg)


if __name__ == "__main__":
    main()
