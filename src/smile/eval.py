"""Hydra entry point for evaluation: a classifier checkpoint -> multi-view test metrics and predictions.

``python eval.py experiment=finetune_k400_vitb ckpt=<run>/checkpoints/last.ckpt`` evaluates with the
experiment's data and test views and writes ``metrics.json``, ``predictions.csv`` (one row per video),
``confusion_matrix.csv`` and ``confusion_matrix.png`` to the run directory; configured loggers also
get the metrics, per-class accuracy and the confusion-matrix image.

Under DDP the test sampler pads the last shard by repeating videos, so the module's torchmetrics
(accumulated per rank, synced at epoch end) count those duplicates. The written results are instead
computed from the per-video predictions gathered from every rank and de-duplicated by ``video_id``
(:func:`metrics_from_predictions`): exactly what a single-process evaluation gives.
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


PAD_TOLERANCE = 1e-6  # torchmetrics (float32) vs the exact per-video metrics: beyond this they differ


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


def _class_mean(hits: torch.Tensor, labels: torch.Tensor, counted: torch.Tensor, num_classes: int) -> float:
    """Mean over the ``counted`` classes of the per-class recall (the fraction of its videos that are hits)."""
    support = torch.bincount(labels, minlength=num_classes).double()  # [K]
    correct = torch.bincount(labels[hits], minlength=num_classes).double()  # [K]
    recall = correct / support.clamp_min(1)
    return float(recall[counted].mean()) if counted.any() else 0.0


def metrics_from_predictions(
    rows: list[dict[str, Any]], num_classes: int, prefix: str = "test"
) -> tuple[dict[str, float], torch.Tensor]:
    """Exact test metrics and confusion matrix from per-video prediction rows (one row per video).

    Each row has ``label``, ``pred`` and ``top5`` (the ``min(5, num_classes)`` best classes, best
    first), as :meth:`ClassifierLitModule._store_predictions` writes them. The metrics mirror the
    module's torchmetrics (:func:`~smile.lit.classify.accuracy_metrics`) key for key:

    * ``{prefix}/acc1``, ``{prefix}/acc5``: the fraction of videos whose label is the top class /
      among the top ``min(5, num_classes)``.
    * ``{prefix}/acc1_class_mean``, ``{prefix}/acc5_class_mean``: per-class recall averaged over the
      classes that occur, as ``MulticlassAccuracy(average="macro")``, which also counts (with recall 0)
      a top-1 class that is predicted but never occurs (its rule: top-1 skips classes with
      ``tp + fp + fn == 0``, top-k > 1 skips classes with ``tp + fn == 0``).

    Returns ``(metrics, confusion)``: ``confusion`` is a ``[K, K]`` int64 count matrix, rows = true class.
    De-duplicate first (:func:`merge_predictions`): every row counts.
    """
    k5 = min(5, num_classes)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    if not rows:
        keys = ("acc1", "acc5", "acc1_class_mean", "acc5_class_mean")
        return {f"{prefix}/{k}": 0.0 for k in keys}, confusion
    labels = torch.tensor([int(r["label"]) for r in rows], dtype=torch.int64)  # [N]
    preds = torch.tensor([int(r["pred"]) for r in rows], dtype=torch.int64)  # [N]
    bad = [r for r, y in zip(rows, labels.tolist(), strict=True) if not 0 <= y < num_classes]
    if bad:
        raise ValueError(f"{len(bad)} prediction rows have labels outside [0, {num_classes}), e.g. {bad[0]}")
    if any(len(r["top5"]) < k5 for r in rows):
        raise ValueError(f"prediction rows need the top {k5} classes in 'top5'")
    top = torch.tensor([[int(c) for c in r["top5"][:k5]] for r in rows], dtype=torch.int64)  # [N, k5]
    hit1 = preds == labels
    hit5 = (top == labels[:, None]).any(1)
    confusion.index_put_((labels, preds), torch.ones_like(labels), accumulate=True)
    occurs = confusion.sum(1) > 0  # [K]
    predicted = confusion.sum(0) > 0  # [K]
    n = len(rows)
    metrics = {
        f"{prefix}/acc1": hit1.sum().item() / n,
        f"{prefix}/acc5": hit5.sum().item() / n,
        f"{prefix}/acc1_class_mean": _class_mean(hit1, labels, occurs | predicted, num_classes),
        f"{prefix}/acc5_class_mean": _class_mean(hit5, labels, occurs, num_classes),
    }
    return metrics, confusion


def reconcile_metrics(
    logged: dict[str, float], exact: dict[str, float], logged_confusion: torch.Tensor | None, confusion: torch.Tensor
) -> list[str]:
    """Names of the ``exact`` metrics (and ``confusion``) that differ from the torchmetrics ones of ``test_step``."""
    differ = [k for k, v in exact.items() if k in logged and abs(logged[k] - v) > PAD_TOLERANCE]
    if logged_confusion is not None and not torch.equal(logged_confusion.long().cpu(), confusion):
        differ.append("confusion matrix")
    return differ


def write_outputs(
    out_dir: Path,
    metrics: dict[str, float],
    module: ClassifierLitModule,
    rows: list[dict[str, Any]] | None = None,
    confusion: torch.Tensor | None = None,
) -> None:
    """``metrics.json``, ``predictions.csv`` and ``confusion_matrix.csv`` / ``.png`` in ``out_dir``.

    ``rows`` (default: ``module.test_predictions`` de-duplicated) and ``confusion`` (default:
    ``module.test_confusion``) are what gets written; no confusion, no confusion files.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    rows = merge_predictions(module.test_predictions) if rows is None else rows
    confusion = module.test_confusion if confusion is None else confusion
    if rows:
        with open(out_dir / "predictions.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if confusion is not None:
        with open(out_dir / "confusion_matrix.csv", "w", newline="") as f:
            csv.writer(f).writerows(confusion.tolist())
        write_png(out_dir / "confusion_matrix.png", confusion_image(confusion))


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
    logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test")}
    gathered = gather_predictions(module.test_predictions)
    module.test_predictions = gathered
    rows = merge_predictions(gathered)  # one row per video: the sampler's padding duplicates dropped
    metrics, confusion, differ = dict(logged), module.test_confusion, []
    if rows:  # the exact metrics from the de-duplicated rows (every rank holds them all)
        exact, confusion = metrics_from_predictions(rows, module.num_classes)
        differ = reconcile_metrics(logged, exact, module.test_confusion, confusion)
        metrics.update(exact)
    metrics["num_videos"] = len(rows)
    if trainer.is_global_zero:
        if differ:
            dropped = len(gathered) - len(rows)
            reason = (
                f"padded duplicates in distributed evaluation ({dropped} of {len(gathered)} gathered prediction rows) "
                "were counted there"
                if dropped
                else "no prediction was duplicated, so test_step's torchmetrics themselves are off"
            )
            log.warning(
                "%s of test_step differ from the exact values of the %d evaluated videos: %s. Writing the exact "
                "values %s (test_step: %s)",
                ", ".join(differ),
                len(rows),
                reason,
                exact,
                {k: logged[k] for k in exact if k in logged},
            )
            for lg in trainer.loggers:  # they got test_step's values: overwrite them
                lg.log_metrics(exact, step=0)
        write_outputs(Path(cfg.paths.output_dir), metrics, module, rows, confusion)
        if confusion is not None:  # per-class accuracy and the matrix image, where loggers take them
            log_confusion(trainer.loggers, confusion, confusion_image(confusion))
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
