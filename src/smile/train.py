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
from hydra.utils import instantiate
from omegaconf import DictConfig

from smile.build import (
    CONFIG_DIR,
    build_classifier,
    build_loggers,
    build_module,
    build_pretrain_module,
    build_trainer,
    explain_missing,
    log_run_config,
    resolve_weights,
)
from smile.callbacks import LossSummary
from smile.callbacks.loggers import finish_wandb

__all__ = [
    "CONFIG_DIR",
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


def find_resume_checkpoint(output_dir: str | Path, resume: Any) -> str | None:
    """The checkpoint to resume from: ``auto`` = newest ``*.ckpt`` of the run, a path, or none."""
    if resume in (None, False, "false", "False", "none", "None"):
        return None
    if resume not in ("auto", True, "true", "True"):
        path = Path(str(resume)).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"resume={resume}: no such checkpoint file")
        return str(path)
    ckpts = sorted(
        Path(output_dir, "checkpoints").glob("*.ckpt"),
        key=lambda p: (p.stat().st_mtime, p.name == "last.ckpt"),
    )
    return str(ckpts[-1]) if ckpts else None


@dataclass
class Run:
    """Everything a training run (pretraining or classification) is made of, built by :func:`setup`."""

    cfg: DictConfig
    datamodule: L.LightningDataModule
    module: L.LightningModule  # PretrainLitModule or ClassifierLitModule
    trainer: L.Trainer
    ckpt_path: str | None

    def fit(self) -> dict[str, Any]:
        """Train (resuming from ``ckpt_path`` if set); returns a summary of the run."""
        if self.ckpt_path:
            log.info("resuming from %s", self.ckpt_path)
        try:
            self.trainer.fit(self.module, datamodule=self.datamodule, ckpt_path=self.ckpt_path)
        except BaseException:
            finish_wandb(self.trainer.loggers, exit_code=1)
            raise
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
    """Check the config, seed, and build data module, LightningModule and trainer."""
    explain_missing(cfg)
    L.seed_everything(cfg.seed, workers=True)
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")
    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    trainer = build_trainer(cfg)
    log_run_config(trainer.loggers, cfg)  # the resolved config next to the metrics
    ckpt = find_resume_checkpoint(cfg.paths.output_dir, cfg.resume)
    return Run(cfg, datamodule, module, trainer, ckpt)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Build everything from ``cfg`` and fit; returns a summary (output dir, checkpoint, loss)."""
    return setup(cfg).fit()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    """Console entry point (``python train.py`` / ``smile-train``)."""
    run(cfg)


if __name__ == "__main__":
    main()
