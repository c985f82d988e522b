"""The one place a config becomes objects: LightningModules, trainer and loggers.

Every piece is built by ``hydra.utils.instantiate`` from its ``_target_`` node (``model.encoder``,
``model.decoder``, ``model.net``, ``model.target``, ``model.optimizer`` (a ``_partial_`` AdamW),
``model.scheduler``, ``model.module``); this module only wires together what one node cannot know
about another (the decoder's output width is the target's, the classifier's weights may come from a
checkpoint). ``train.py``, ``eval.py`` and the CLI commands (``smile-bench``, ``smile-vis``) all
build through these functions.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

from smile.callbacks.loggers import git_metadata, wandb_run_names
from smile.data.classes import resolve_num_classes
from smile.data.datamodule import VideoDataModule
from smile.lit import ClassifierLitModule, PretrainLitModule
from smile.models import load_encoder_weights, load_student_weights
from smile.provenance import warn_init_from
from smile.zoo import resolve

log = logging.getLogger(__name__)

CONFIG_DIR = os.environ.get("SMILE_CONFIG_DIR", str(Path(__file__).resolve().parents[2] / "configs"))


def resolve_weights(cfg: DictConfig, spec: str | Path) -> Path:
    """A weights file named in the config: ``zoo:<name>`` resolves in ``paths.zoo_dir`` (see ``smile.zoo``)."""
    return resolve(spec, cfg.paths.zoo_dir)


def check_partial(factory: Any, key: str) -> Any:
    """Refuse a ``_partial_`` factory configured with a keyword its callable does not take.

    Hydra builds a partial without calling it, so a mistyped ``model.optimizer.lrr`` would only
    fail when the optimizer is made, or, worse, never. This fails at build time, naming the key.
    """
    if not isinstance(factory, functools.partial):
        return factory
    params = inspect.signature(factory.func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return factory
    unknown = sorted(set(factory.keywords) - set(params))
    if unknown:
        name = getattr(factory.func, "__qualname__", str(factory.func))
        valid = ", ".join(p for p in params if p not in ("self", "params"))
        raise ValueError(f"{key}.{unknown[0]}: {name} has no argument {unknown[0]!r} (valid: {valid})")
    return factory


def _call(node: DictConfig, **objects: Any) -> Any:
    """Instantiate ``node`` with already-built objects as extra arguments.

    Hydra would merge keyword objects into the config (turning a dataclass into a config node), so
    the node becomes a partial first and the objects are passed to the call as they are.
    """
    return instantiate(node, _partial_=True)(**objects)


def _optimisation(cfg: DictConfig) -> dict[str, Any]:
    """The optimizer factory and schedule of ``cfg.model``, checked."""
    return {
        "optimizer": check_partial(instantiate(cfg.model.optimizer), "model.optimizer"),
        "scheduler": instantiate(cfg.model.scheduler),
    }


def build_pretrain_module(cfg: DictConfig) -> PretrainLitModule:
    """The student, its frozen target and the optimisation settings, from ``cfg.model``."""
    m = cfg.model
    target = instantiate(m.target)
    net = _call(m.net, encoder=instantiate(m.encoder), decoder=instantiate(m.decoder, out_dim=target.dim))
    if m.init_from:  # stage 2: student weights only; optimizer and schedule start fresh
        path = resolve_weights(cfg, m.init_from)
        warn_init_from(cfg, path)  # another geometry is legitimate: warned, not refused
        report = load_student_weights(net, path)
        log.info("model.init_from: %s", report)  # a partial load raised CheckpointError already
    return _call(m.module, net=net, target=target, **_optimisation(cfg))


def resolve_classes(cfg: DictConfig) -> list[str] | None:
    """Write the class count into ``data.num_classes`` (null = take it from the data) and return the names.

    Every ``${data.num_classes}`` (the model's head, Mixup's soft targets) then resolves to the data's
    count; a configured count the data contradicts fails here, before anything is built
    (:func:`~smile.data.classes.resolve_num_classes`). Idempotent.
    """
    count, names = resolve_num_classes(cfg)
    with open_dict(cfg):
        cfg.data.num_classes = count
    return names


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The data module of ``cfg.data``, after the class count is known (see :func:`resolve_classes`).

    Clip models take a :class:`~smile.data.VideoDataModule`; detection (``model.kind=detect``) its AVA
    counterpart, :class:`~smile.data.ava.AvaDataModule`.
    """
    if cfg.model.kind == "classify":
        resolve_classes(cfg)
    datamodule = instantiate(cfg.data)
    expected: type[L.LightningDataModule] = VideoDataModule
    name = "smile.data.VideoDataModule"
    if cfg.model.kind == "detect":
        from smile.data.ava import AvaDataModule

        expected, name = AvaDataModule, "smile.data.ava.AvaDataModule"
    if not isinstance(datamodule, expected):
        got = type(datamodule).__name__
        raise TypeError(f"data._target_ must build a {name} (model.kind={cfg.model.kind}), got {got}")
    return datamodule


def build_classifier(cfg: DictConfig) -> ClassifierLitModule:
    """Finetuning / linear probing: the mean-pooled encoder, optionally initialised from a checkpoint.

    The class count comes from the data when ``data.num_classes`` is null (and is checked against
    it when set): :func:`~smile.data.classes.resolve_num_classes` reads the training index.
    """
    names = resolve_classes(cfg)
    m = cfg.model
    net = instantiate(m.encoder)
    if m.init_from:
        path = resolve_weights(cfg, m.init_from)
        warn_init_from(cfg, path, class_names=names)  # another geometry is legitimate: warned, not refused
        report = load_encoder_weights(net, path, reinit=tuple(m.reinit))
        log.info("model.init_from: %s", report)
    return _call(m.module, net=net, **_optimisation(cfg))


def build_detector(cfg: DictConfig) -> L.LightningModule:
    """AVA action detection: the token encoder plus the RoI head (``model.head``, its width the encoder's),
    optionally initialised from any pretraining, classifier or detection checkpoint (``model.init_from``)."""
    from smile.models.detection_weights import load_detector_weights  # the detection stack only when used

    m = cfg.model
    encoder = instantiate(m.encoder)
    net = _call(m.net, encoder=encoder, head=_call(m.head, embed_dim=encoder.embed_dim))
    if m.init_from:
        path = resolve_weights(cfg, m.init_from)
        warn_init_from(cfg, path)  # another geometry is legitimate (AVA clips are larger): warned, not refused
        report = load_detector_weights(net, path)
        log.info("model.init_from: %s", report)
    return _call(m.module, net=net, **_optimisation(cfg))


BUILDERS = {"pretrain": build_pretrain_module, "classify": build_classifier, "detect": build_detector}


def build_module(cfg: DictConfig) -> L.LightningModule:
    """The LightningModule of ``cfg.model``: pretraining, classification or detection (``model.kind``)."""
    if cfg.model.kind not in BUILDERS:
        raise ValueError(f"model.kind={cfg.model.kind!r} is unknown; use one of {sorted(BUILDERS)}")
    return BUILDERS[cfg.model.kind](cfg)


def _nodes(cfg: DictConfig, key: str) -> list[DictConfig]:
    """The instantiable nodes of a dict-of-nodes group (``callbacks``, ``logger``); none if it is unset."""
    group = cfg[key] if key in cfg else None
    return [node for node in (group or {}).values() if node is not None]


def build_loggers(cfg: DictConfig) -> list[Logger]:
    """The configured loggers; W&B runs left unnamed get their group and name from the run (see
    :func:`~smile.callbacks.loggers.wandb_run_names`): a multirun sweep is one W&B group."""
    loggers = []
    for node in _nodes(cfg, "logger"):
        extra = {}
        if str(node._target_).endswith("WandbLogger"):
            group, name = wandb_run_names(cfg.name, *_hydra_job(cfg))
            extra = {"group": node.group or group, "name": node.name or name}
        loggers.append(instantiate(node, **extra))
    return loggers


def _hydra_job(cfg: DictConfig) -> tuple[str, str | None, str | None]:
    """(run directory name, sweep dir or None, output root) of the Hydra job; empty outside ``@hydra.main``."""
    if not HydraConfig.initialized():
        return "", None, None
    hc = HydraConfig.get()
    sweep = str(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    run = Path(hc.runtime.output_dir).name  # the run directory's own name (smile.run_dir)
    return ("" if run == cfg.name else run), sweep, str(cfg.paths.root) or None


def build_trainer(cfg: DictConfig, **overrides: Any) -> L.Trainer:
    """Trainer with the configured callbacks and loggers (each a dict of instantiable nodes), unless
    ``overrides`` gives its own (``eval.py``: no callbacks)."""
    if "callbacks" not in overrides:
        overrides["callbacks"] = [instantiate(node) for node in _nodes(cfg, "callbacks")]
    if "logger" not in overrides:
        overrides["logger"] = build_loggers(cfg) or False
    node = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert isinstance(node, dict)
    node.pop("matmul_precision")  # ours (applied by the entry points), not a Trainer argument
    return instantiate(node, **overrides)


def log_run_config(loggers: list[Logger], cfg: DictConfig) -> None:
    """The resolved config plus the code's git commit (``git_commit``, ``git_dirty``), in every logger."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(resolved, dict)
    params = {**resolved, **git_metadata()}
    for lg in loggers:
        lg.log_hyperparams(params)


MISSING_HINTS = {
    "list_file": "A video list has one `<path> <label>` line per clip (README > Data).",
    "teacher.path": "Teacher weights come from a local file, never a download (README > Teachers).",
    "root_or_packed": "Objects: a folder of RGBA PNGs or the output of `smile-data pack-objects` (README > Objects).",
    "init_from": "The model to start from: for SMILE stage 2 the stage-1 checkpoint, for finetuning and AVA a "
    "pretraining one, e.g. outputs/<run>/checkpoints/last.ckpt (this project's .ckpt or an official .pth).",
    "source.root": "The dataset's folder in its published layout (README > Datasets in their published layouts; "
    "AVA: README > Action detection (AVA)).",
    "folder": "Background images: a folder of JPEG/PNG files.",
}


def explain_missing(cfg: DictConfig) -> None:
    """Turn an unset mandatory value (``???``) into a message that says what to pass."""
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except (MissingMandatoryValue, InterpolationToMissingValueError) as err:
        # through an interpolation (data.train_dataset.frames -> data.source.root) the unset key is in the message
        found = re.search(r"Missing mandatory value: ([\w.]+)", str(err))
        key = found.group(1) if isinstance(err, InterpolationToMissingValueError) and found else str(err.full_key)
        hint = next((text for suffix, text in MISSING_HINTS.items() if key.endswith(suffix)), "")
        experiment = f"experiment={cfg.name} " if cfg.name != "default" else ""
        raise SystemExit(
            f"Config value `{key}` is required but not set (run `{cfg.name}`).\n"
            f"Pass it on the command line, e.g.:  python train.py {experiment}{key}=/path/to/file\n" + hint
        ) from None
