"""Hydra entry point for training: config -> data module, LightningModule, trainer -> fit.

``python train.py [overrides]`` (or ``smile-train``) runs :func:`main`; tests and notebooks call
:func:`run` with a composed config.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

import smile.quiet  # noqa: F401  (targeted filters of Lightning notices that do not apply here)
import smile.run_dir  # noqa: F401  (registers the ${smile_run_dir:...} resolver before @hydra.main)
from smile.build import (
    CONFIG_DIR,
    build_classifier,
    build_datamodule,
    build_loggers,
    build_module,
    build_pretrain_module,
    build_trainer,
    explain_missing,
    log_run_config,
    resolve_weights,
)
from smile.callbacks import LossSummary
from smile.callbacks.checkpoint_io import CheckpointNotFoundError, UnusableCheckpointError, checked_global_step
from smile.callbacks.loggers import finish_wandb
from smile.checks import ConfigError, check_config
from smile.data.badvideos import TooManyBadVideos
from smile.data.datamodule import BatchSizeError
from smile.lit import NonFiniteLossError
from smile.models.checkpoint import CheckpointError
from smile.run_length import resolve_run_length, stop_reason
from smile.run_lock import RunDirectoryInUse, RunLock
from smile.suggest import suggest_on_failure

__all__ = [
    "CONFIG_DIR",
    "USER_ERRORS",
    "Run",
    "build_classifier",
    "build_loggers",
    "build_module",
    "build_pretrain_module",
    "build_trainer",
    "explain_missing",
    "find_resume_checkpoint",
    "log_run_config",
    "main",
    "resolve_weights",
    "run",
    "setup",
]

log = logging.getLogger(__name__)

# Lightning notices that are expected here: the frozen target stays in eval mode on purpose, and
# pretraining without a validation set returns no val loader.
for _msg in (
    r".*module\(s\) in eval mode.*",
    r".*Total length of `list` across ranks is zero.*",
    r".*LeafSpec.*",
):
    warnings.filterwarnings("ignore", message=_msg)


# Errors whose message is the whole story (what happened, which file, what to do): `main` prints
# the message alone; library callers of `setup`/`run` get the exception.
USER_ERRORS = (
    RunDirectoryInUse,
    UnusableCheckpointError,
    CheckpointNotFoundError,
    NonFiniteLossError,
    CheckpointError,
    ConfigError,
    TooManyBadVideos,
    BatchSizeError,
)
OFF = (None, False, "false", "False", "none", "None")
AUTO = ("auto", True, "true", "True")


def find_resume_checkpoint(output_dir: str | Path, resume: Any) -> str | None:
    """The checkpoint to resume from: ``auto`` = newest intact ``*.ckpt`` of the run, a path, or none.

    Every candidate is opened and checked (:func:`checked_global_step`) before it is trusted: a file
    truncated by a kill or a full disk is skipped with a warning naming it and the file used instead.

    Raises:
        CheckpointNotFoundError: ``resume=<path>`` names no file.
        UnusableCheckpointError: ``resume=<path>`` is damaged, or every checkpoint of the run is.
    """
    if resume in OFF:
        return None
    if resume not in AUTO:
        return _explicit_checkpoint(resume)
    ckpts = sorted(
        Path(output_dir, "checkpoints").glob("*.ckpt"),
        key=lambda p: (p.stat().st_mtime, p.name == "last.ckpt"),
        reverse=True,
    )
    tried: list[str] = []
    for path in ckpts:
        try:
            step = checked_global_step(path)
        except UnusableCheckpointError as err:
            tried.append(f"{path} {err}")
            continue
        if tried:
            log.warning("skipped damaged checkpoint(s): %s; resuming from %s (step %d)", "; ".join(tried), path, step)
        return str(path)
    if tried:
        raise UnusableCheckpointError(
            f"no intact checkpoint to resume from in {Path(output_dir, 'checkpoints')}: tried {'; '.join(tried)}. "
            "Move them away and re-run, or start over with resume=false (or another name=...)"
        )
    return None


def _explicit_checkpoint(resume: Any) -> str:
    """``resume=<path>``: the file, checked like an automatic pick but never replaced by another."""
    path = Path(str(resume)).expanduser()
    if not path.is_file():
        raise CheckpointNotFoundError(f"resume={resume}: no such checkpoint file")
    try:
        checked_global_step(path)
    except UnusableCheckpointError as err:
        raise UnusableCheckpointError(
            f"resume={resume}: {path} {err}; pass an intact file, or resume=auto for the run's newest intact one"
        ) from None
    return str(path)


@dataclass
class Run:
    """Everything a training run (pretraining or classification) is made of, built by :func:`setup`."""

    cfg: DictConfig
    datamodule: L.LightningDataModule
    module: L.LightningModule  # PretrainLitModule or ClassifierLitModule
    trainer: L.Trainer
    ckpt_path: str | None
    lock: RunLock | None = None  # the run directory's lock (rank 0), released when fit ends

    def fit(self) -> dict[str, Any]:
        """Train (resuming from ``ckpt_path`` if set); returns a summary of the run."""
        if self.ckpt_path:
            log.info("resuming from %s", self.ckpt_path)
        try:
            self.trainer.fit(self.module, datamodule=self.datamodule, ckpt_path=self.ckpt_path)
        except BaseException:
            finish_wandb(self.trainer.loggers, exit_code=1)
            raise
        finally:
            if self.lock is not None:
                self.lock.release()
        if self.trainer.is_global_zero:
            log.info("%s", stop_reason(self.trainer))
        callbacks: list[Any] = getattr(self.trainer, "callbacks", [])  # a property Lightning sets at init
        meter = next((cb for cb in callbacks if isinstance(cb, LossSummary)), None)
        if meter is not None and self.trainer.is_global_zero:
            print(meter.report(self.trainer), flush=True)
        summary = meter.summary() if meter is not None else None
        finish_wandb(self.trainer.loggers)  # prints `wandb sync <dir>` for offline runs
        return {
            "output_dir": str(self.cfg.paths.output_dir),
            "last_checkpoint": getattr(self.trainer.checkpoint_callback, "last_model_path", None),
            "global_step": self.trainer.global_step,
            "loss": summary,
        }


def setup(cfg: DictConfig) -> Run:
    """Check the config, fix the run length, seed, build data module, LightningModule and trainer,
    lock the run directory.

    The lock is taken once the trainer knows the process's rank (only global rank 0 takes it) and
    before anything is written into the run directory or a checkpoint is chosen.

    Raises:
        RunDirectoryInUse: another process is running in ``paths.output_dir``.
    """
    explain_missing(cfg)
    check_config(cfg)  # impossible values, by key, before anything is built
    resolve_run_length(cfg)  # trainer.max_epochs from whichever limit is set (or default_epochs)
    L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.trainer.matmul_precision)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg)
    trainer = build_trainer(cfg)
    lock = RunLock(cfg.paths.output_dir).acquire() if trainer.is_global_zero else None
    try:
        log_run_config(trainer.loggers, cfg)  # the resolved config next to the metrics
        ckpt = find_resume_checkpoint(cfg.paths.output_dir, cfg.resume)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return Run(cfg, datamodule, module, trainer, ckpt, lock)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Build everything from ``cfg`` and fit; returns a summary (output dir, checkpoint, loss)."""
    return setup(cfg).fit()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; user errors end in one line, no traceback. Returns the mean train/loss of
    the last steps (what a sweeper such as Optuna minimises), or None.

    Under ``-m`` the exception goes to Hydra instead, which marks that job failed and runs the rest
    of the sweep (a ``SystemExit`` would end the whole sweep).
    """
    try:
        summary = run(cfg)["loss"]
        return float(summary["last"]) if summary else None
    except USER_ERRORS as err:
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            raise
        raise SystemExit(f"error: {err}") from None


def cli() -> None:
    """Console entry point (``python train.py`` / ``smile-train``): a misspelled key gets a "did you mean"."""
    with suggest_on_failure(CONFIG_DIR, "train"):
        main()


if __name__ == "__main__":
    cli()
