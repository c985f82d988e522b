"""Hydra entry point for pretraining: config -> data module, LightningModule, trainer -> fit.

``python train.py [overrides]`` (or ``smile-train``) runs :func:`main`; tests and notebooks call
:func:`run` with a composed config.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from smile.callbacks import LossSummary
from smile.callbacks.loggers import finish_wandb, git_metadata, wandb_run_names
from smile.lit import ClassifierLitModule, PretrainLitModule
from smile.models import create_encoder, create_pretrain_model, load_encoder_weights, load_student_weights
from smile.zoo import resolve

log = logging.getLogger(__name__)

# Lightning notices that are expected here: the frozen target stays in eval mode on purpose, and
# pretraining without a validation set returns no val loader.
for _msg in (
    r".*module\(s\) in eval mode.*",
    r".*Total length of `list` across ranks is zero.*",
    r".*LeafSpec.*",
):
    warnings.filterwarnings("ignore", message=_msg)

CONFIG_DIR = os.environ.get("SMILE_CONFIG_DIR", str(Path(__file__).resolve().parents[2] / "configs"))


def resolve_weights(cfg: DictConfig, spec: str | Path) -> Path:
    """A weights file named in the config: ``zoo:<name>`` resolves in ``paths.zoo_dir`` (see ``smile.zoo``)."""
    return resolve(spec, (cfg.get("paths") or {}).get("zoo_dir"))


def build_module(cfg: DictConfig) -> L.LightningModule:
    """The LightningModule of ``cfg.model``: pretraining (default) or classification (``kind: classify``)."""
    if cfg.model.get("kind", "pretrain") == "classify":
        return build_classifier(cfg)
    return build_pretrain_module(cfg)


def build_classifier(cfg: DictConfig) -> ClassifierLitModule:
    """Finetuning / linear probing: ``create_encoder`` + head, optionally initialised from a checkpoint."""
    enc, video, m = cfg.model.encoder, cfg.video, cfg.model
    net = create_encoder(
        enc.name,
        num_classes=m.num_classes,
        num_frames=video.num_frames,
        img_size=video.img_size,
        patch_size=video.patch_size,
        tubelet_size=video.tubelet_size,
        drop_path=enc.drop_path,
        use_checkpoint=enc.use_checkpoint,
        head_init_scale=m.head_init_scale,
        fc_drop=m.fc_drop,
        **_encoder_overrides(enc, classifier=True),
    )
    if m.get("init_from"):
        report = load_encoder_weights(net, resolve_weights(cfg, m.init_from), reinit=tuple(m.get("reinit") or ()))
        log.info("model.init_from: %s", report)
    return ClassifierLitModule(
        net=net,
        num_classes=m.num_classes,
        optimizer=_plain(m.optimizer),
        scheduler=_plain(m.scheduler),
        mixup=_plain(m.get("mixup")),
        label_smoothing=m.label_smoothing,
        ema=_plain(m.get("ema")),
        freeze_encoder=m.freeze_encoder,
        max_nonfinite_steps=m.max_nonfinite_steps,
        nonfinite_check_every=m.get("nonfinite_check_every", 50),
    )


def _plain(node: DictConfig | None) -> dict[str, Any] | None:
    """A resolved plain dict of a config node (None stays None), for modules that save hyperparameters."""
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


def _encoder_overrides(enc: DictConfig, classifier: bool = False) -> dict[str, Any]:
    """Size overrides of ``model.encoder`` (decoder fields dropped for a classifier)."""
    out = OmegaConf.to_container(enc.overrides) if enc.get("overrides") else {}
    return {k: v for k, v in out.items() if not (classifier and k.startswith("decoder_"))}


def build_pretrain_module(cfg: DictConfig) -> PretrainLitModule:
    """The student, its frozen target and the optimisation settings, from ``cfg.model``/``cfg.video``."""
    target = instantiate(cfg.model.target)
    enc, video = cfg.model.encoder, cfg.video
    net = create_pretrain_model(
        enc.name,
        num_frames=video.num_frames,
        img_size=video.img_size,
        patch_size=video.patch_size,
        tubelet_size=video.tubelet_size,
        decoder_depth=cfg.model.decoder.depth,
        target_dim=target.dim,
        drop_path=enc.drop_path,
        use_checkpoint=enc.use_checkpoint,
        **_encoder_overrides(enc),
    )
    if cfg.model.get("init_from"):  # stage 2: student weights only; optimizer and schedule start fresh
        report = load_student_weights(net, resolve_weights(cfg, cfg.model.init_from))
        log.info("model.init_from: %s", report)
        if report.missing:
            log.warning("model.init_from left %d student tensors at their initial values", len(report.missing))
    return PretrainLitModule(
        net=net,
        target=target,
        optimizer=_plain(cfg.model.optimizer),
        scheduler=_plain(cfg.model.scheduler),
        max_nonfinite_steps=cfg.model.max_nonfinite_steps,
        nonfinite_check_every=cfg.model.get("nonfinite_check_every", 50),
    )


def build_loggers(cfg: DictConfig) -> list[Logger]:
    """The configured loggers; W&B runs left unnamed get their group and name from the run (see
    :func:`~smile.callbacks.loggers.wandb_run_names`): a multirun sweep is one W&B group."""
    loggers = []
    for node in (cfg.get("logger") or {}).values():
        if node is None:
            continue
        extra = {}
        if str(node.get("_target_", "")).endswith("WandbLogger"):
            group, name = wandb_run_names(cfg.get("name") or "default", *_hydra_job(cfg))
            extra = {"group": node.get("group") or group, "name": node.get("name") or name}
        loggers.append(instantiate(node, **extra))
    return loggers


def _hydra_job(cfg: DictConfig) -> tuple[str, str | None, str | None]:
    """(override dirname, sweep dir or None, output root) of the Hydra job; empty outside ``@hydra.main``."""
    if not HydraConfig.initialized():
        return "", None, None
    hc = HydraConfig.get()
    sweep = str(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    return str(hc.job.override_dirname or ""), sweep, str(cfg.paths.get("root", "")) or None


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """Trainer with the configured callbacks and loggers (each a dict of instantiable nodes)."""
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    return instantiate(cfg.trainer, callbacks=callbacks, logger=build_loggers(cfg) or False)


def log_run_config(loggers: list[Logger], cfg: DictConfig) -> None:
    """The resolved config plus the code's git commit (``git_commit``, ``git_dirty``), in every logger."""
    params = {**OmegaConf.to_container(cfg, resolve=True), **git_metadata()}
    for lg in loggers:
        lg.log_hyperparams(params)


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


MISSING_HINTS = {
    "list_file": "A video list has one `<path> <label>` line per clip (README > Data).",
    "teacher.path": "Teacher weights come from a local file, never a download (README > Teachers).",
    "root_or_packed": "Objects: a folder of RGBA PNGs or the output of `smile-data pack-objects` (README > Objects).",
    "init_from": "Stage 2 starts from the stage-1 checkpoint, e.g. outputs/<stage-1 run>/checkpoints/last.ckpt.",
    "folder": "Background images: a folder of JPEG/PNG files.",
}


def explain_missing(cfg: DictConfig) -> None:
    """Turn an unset mandatory value (``???``) into a message that says what to pass."""
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as err:
        key = err.full_key
        hint = next((text for suffix, text in MISSING_HINTS.items() if key.endswith(suffix)), "")
        raise SystemExit(
            f"Config value `{key}` is required but not set (run `{cfg.get('name')}`).\n"
            f"Pass it on the command line, e.g.:  python train.py {_experiment_arg(cfg)}{key}=/path/to/file\n" + hint
        ) from None


def _experiment_arg(cfg: DictConfig) -> str:
    name = cfg.get("name")
    return f"experiment={name} " if name and name != "default" else ""


@dataclass
class Run:
    """Everything a pretraining run is made of, built from one config (see :func:`setup`)."""

    cfg: DictConfig
    datamodule: L.LightningDataModule
    module: PretrainLitModule
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
        meter = next((cb for cb in self.trainer.callbacks if isinstance(cb, LossSummary)), None)
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
    ckpt = find_resume_checkpoint(cfg.paths.output_dir, cfg.get("resume", "auto"))
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
