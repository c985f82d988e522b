"""Hydra entry point for evaluation: a classifier checkpoint -> multi-view test metrics and predictions.

``python eval.py experiment=finetune_k400_vitb ckpt=<run>/checkpoints/last.ckpt`` evaluates with the
experiment's data and test views and writes ``metrics.json``, ``predictions.csv`` (one row per video),
``confusion_matrix.csv`` and ``confusion_matrix.png`` to the run directory; configured loggers also
get the metrics, per-class accuracy and the confusion-matrix image.

Under DDP the test sampler pads the last shard by repeating videos, so the module's torchmetrics
(accumulated per rank, synced at epoch end) count those duplicates. The written results are instead
computed from the per-video predictions gathered from every rank and de-duplicated by ``video_id``
(:func:`metrics_from_predictions`): exactly what a single-process evaluation gives.

Detection experiments (``model.kind=detect``, the ``ava_*`` ones) write ``detections.csv`` in the
official AVA format, ``per_class_ap.csv`` and the frame-mAP in ``metrics.json`` instead
(:func:`evaluate_detection`).
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import smile.quiet  # noqa: F401  (targeted filters of Lightning notices that do not apply here)
import smile.run_dir  # noqa: F401  (registers the ${smile_run_dir:...} resolver before @hydra.main)
from smile.build import (
    CONFIG_DIR,
    build_datamodule,
    build_module,
    build_trainer,
    explain_missing,
    log_run_config,
    resolve_weights,
)
from smile.callbacks.loggers import finish_wandb, log_confusion
from smile.callbacks.render import confusion_image, write_png
from smile.checks import ConfigError, check_config
from smile.data import VideoDataModule
from smile.data.ava import AvaDataModule
from smile.data.badvideos import TooManyBadVideos
from smile.data.classes import default_class_names
from smile.lit import ClassifierLitModule, DetectionLitModule
from smile.metrics import gather_predictions, merge_predictions, metrics_from_predictions, reconcile_metrics
from smile.metrics.ava import read_labelmap
from smile.metrics.classification import class_names_or_default, confusion_table, named_rows
from smile.metrics.detections import write_detections_csv
from smile.models.checkpoint import CheckpointError, check_same_keys, load_encoder_weights, read_state_dict
from smile.provenance import ProvenanceMismatch, adopt_provenance
from smile.suggest import suggest_on_failure

log = logging.getLogger(__name__)


def load_classifier_checkpoint(module: ClassifierLitModule, path: str | Path) -> None:
    """Weights of a Lightning classifier ``.ckpt`` (strict), or an official finetuned ``.pth``.

    Raises:
        CheckpointError: one line naming the file: unreadable, or not this classifier's weights.
    """
    sd = read_state_dict(path)
    if any(k.startswith("net.") for k in sd):
        own = {k.removeprefix("net."): v for k, v in sd.items() if k.startswith("net.")}
        what = "a classifier checkpoint of this experiment (model.encoder, data.num_classes)"
        check_same_keys(path, own, module.net.state_dict(), what)
        module.net.load_state_dict(own, strict=True)
    else:
        report = load_encoder_weights(module.net, path)
        if report.missing:
            raise CheckpointError(f"{path}: not a finetuned classifier: missing {report.missing}")


def write_outputs(
    out_dir: Path,
    metrics: dict[str, float],
    module: ClassifierLitModule,
    rows: list[dict[str, Any]] | None = None,
    confusion: torch.Tensor | None = None,
    class_names: Sequence[str] | None = None,
) -> None:
    """``metrics.json``, ``predictions.csv`` and ``confusion_matrix.csv`` / ``.png`` in ``out_dir``.

    ``rows`` (default: ``module.test_predictions`` de-duplicated) and ``confusion`` (default:
    ``module.test_confusion``) are what gets written; no confusion, no confusion files. Class
    names (the data module's ``class_names``; ``class_<i>`` when None) go next to every index:
    ``label_name``, ``pred_name``, ``top5_names`` columns, the matrix's header row and first column,
    and the picture's axes, so that no output needs a lookup table to be read.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    rows = merge_predictions(module.test_predictions) if rows is None else rows
    confusion = module.test_confusion if confusion is None else confusion
    names = class_names_or_default(class_names, module.num_classes)
    if rows:
        rows = named_rows(rows, names)
        with open(out_dir / "predictions.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if confusion is not None:
        with open(out_dir / "confusion_matrix.csv", "w", newline="") as f:
            csv.writer(f).writerows(confusion_table(confusion, names))
        write_png(out_dir / "confusion_matrix.png", confusion_image(confusion, names))


def check_class_names(
    data_names: Sequence[str] | None, provenance: dict[str, Any] | None, path: Path
) -> list[str] | None:
    """The class names to write: the data's, checked against the checkpoint's; the checkpoint's where the
    data names none (``class_<i>``).

    Raises:
        ProvenanceMismatch: the data names its classes otherwise than the checkpoint (the label indices
            would mean other classes), in one line naming the first difference.
    """
    trained = provenance["class_names"] if provenance is not None else None
    if trained is None or data_names is None or list(data_names) == list(trained):
        return list(data_names) if data_names is not None else trained
    if list(data_names) == default_class_names(len(data_names)) and len(data_names) == len(trained):
        return list(trained)  # the data cannot name its classes: the checkpoint can
    first = next((i for i, (a, b) in enumerate(zip(data_names, trained, strict=False)) if a != b), None)
    what = (
        f"class {first} is {data_names[first]!r} in the data but {trained[first]!r}"
        if first is not None
        else f"the data has {len(data_names)} classes but {len(trained)}"
    )
    raise ProvenanceMismatch(f"{what} in {path}: evaluate on the data the checkpoint was trained for")


def evaluate(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Build data and classifier from ``cfg``, load ``cfg.ckpt``, test; returns the metrics.

    The clip geometry, normalisation and encoder the checkpoint records (:mod:`smile.provenance`)
    replace the config's where ``overrides`` (the command line's; ``main`` passes Hydra's) does not
    set them; a set value that contradicts the checkpoint is refused unless ``allow_geometry_change``.
    Without ``overrides`` (a library call) every value of ``cfg`` counts as set: any difference is refused.
    """
    explain_missing(cfg)
    ckpt = resolve_weights(cfg, cfg.ckpt)
    provenance = adopt_provenance(cfg, ckpt, overrides)  # before anything is built from the geometry
    check_config(cfg)
    torch.set_float32_matmul_precision(cfg.trainer.matmul_precision)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    if isinstance(datamodule, AvaDataModule):
        return evaluate_detection(cfg, datamodule, ckpt)
    assert isinstance(datamodule, VideoDataModule)
    names = check_class_names(datamodule.class_names, provenance, ckpt)
    module = build_module(cfg)
    if not isinstance(module, ClassifierLitModule):
        raise SystemExit("eval.py evaluates classifiers: pick a finetune/probe experiment (model=classifier)")
    load_classifier_checkpoint(module, ckpt)
    trainer = build_trainer(cfg, callbacks=[], enable_checkpointing=False)
    log_run_config(trainer.loggers, cfg)
    if cfg.split == "val":
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
        write_outputs(Path(cfg.paths.output_dir), metrics, module, rows, confusion, class_names=names)
        if confusion is not None:  # per-class accuracy and the matrix image, where loggers take them
            log_confusion(trainer.loggers, confusion, confusion_image(confusion, names), class_names=names)
        finish_wandb(trainer.loggers)
        log.info("test metrics: %s (written to %s)", metrics, cfg.paths.output_dir)
        print(json.dumps(metrics, indent=2), f"\noutputs: {cfg.paths.output_dir}", flush=True)
    return metrics


def load_detection_checkpoint(module: DetectionLitModule, path: str | Path) -> None:
    """Weights of this project's detection ``.ckpt``, strictly (encoder and RoI head).

    Raises:
        CheckpointError: one line naming the file: unreadable, or not this detector's weights.
    """
    sd = read_state_dict(path)
    own = {k.removeprefix("net."): v for k, v in sd.items() if k.startswith("net.")}
    if not any(k.startswith("head.") for k in own):
        raise CheckpointError(
            f"{path}: not a detection checkpoint of this project (no net.head.* RoI head): evaluate the "
            "checkpoints/last.ckpt of an ava_* training run; pretraining and classifier files go to model.init_from"
        )
    check_same_keys(path, own, module.net.state_dict(), "a detection checkpoint of this experiment (model.encoder)")
    module.net.load_state_dict(own, strict=True)


def evaluate_detection(cfg: DictConfig, datamodule: AvaDataModule, ckpt: Path) -> dict[str, Any]:
    """AVA: score the evaluation keyframes' boxes, write ``detections.csv`` (the official format) and the frame-mAP.

    AVA's test labels are not public, so ``split`` val and test both evaluate the val dataset. Every rank's
    detections are gathered once and each keyframe counts once (:class:`~smile.lit.DetectionLitModule`).
    Writes ``detections.csv``, ``metrics.json`` and ``per_class_ap.csv`` (AVA id, name, AP, ground-truth boxes).
    """
    module = build_module(cfg)
    assert isinstance(module, DetectionLitModule)
    load_detection_checkpoint(module, ckpt)
    trainer = build_trainer(cfg, callbacks=[], enable_checkpointing=False)
    log_run_config(trainer.loggers, cfg)
    trainer.test(module, datamodule=datamodule)
    rows = module.test_detections
    result = module.eval_results.get("test")
    metrics: dict[str, Any] = {"num_keyframes": len({r[:2] for r in rows}), "num_detections": len(rows)}
    if result is not None:
        metrics["test/frame_map"] = result["mAP"]
    if trainer.is_global_zero:
        out = Path(cfg.paths.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_detections_csv(out / "detections.csv", rows)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if result is not None and datamodule.eval_files is not None:
            ids = {name: cid for cid, name in read_labelmap(datamodule.eval_files.label_map).items()}
            with open(out / "per_class_ap.csv", "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["action_id", "name", "ap", "num_groundtruth"])
                for name, ap in result["per_class"].items():
                    writer.writerow([ids[name], name, ap, result["num_groundtruth"][name]])
        finish_wandb(trainer.loggers)
        log.info("test metrics: %s (written to %s)", metrics, out)
        print(json.dumps(metrics, indent=2), f"\noutputs: {out}", flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    """Console entry point (``python eval.py`` / ``smile-eval``); an unusable ``ckpt`` exits 2 with one line."""
    try:
        overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None
        evaluate(cfg, overrides=overrides)
    except (CheckpointError, ConfigError, TooManyBadVideos) as err:
        print(f"smile-eval: error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def cli() -> None:
    """Console entry point (``python eval.py`` / ``smile-eval``): a misspelled key gets a "did you mean"."""
    with suggest_on_failure(CONFIG_DIR, "eval"):
        main()


if __name__ == "__main__":
    cli()
