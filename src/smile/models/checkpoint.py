"""Loading student weights from this project's checkpoints and from official VideoMAE/SMILE files.

Stage-2 pretraining starts from a stage-1 student (SPEC §4.4): every student weight is loaded,
missing and unexpected keys are reported, and shape mismatches are refused instead of silently
skipped (the reference's loader only printed them, SPEC §10.18). Files are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

# Where the weights sit inside a file: Lightning checkpoints, official .pth files, DeepSpeed.
CONTAINER_KEYS = ("state_dict", "model", "module")


@dataclass
class LoadReport:
    """What a non-strict load did: counts and names, for logs and tests."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        def names(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f", … (+{len(keys) - 8})" if len(keys) > 8 else "") if keys else "none"

        return (
            f"loaded {len(self.loaded)} tensors from {self.path}; "
            f"missing {len(self.missing)}: {names(self.missing)}; "
            f"unexpected {len(self.unexpected)}: {names(self.unexpected)}"
        )


# Objects the official VideoMAE/SMILE .pth files pickle next to the weights (the training args);
# torch.load(weights_only=True) accepts exactly these, never arbitrary classes.
SAFE_GLOBALS: list[Any] = [argparse.Namespace]


def read_checkpoint(path: str | Path) -> object:
    """The whole object a checkpoint file holds (weights, and hyper-parameters or args beside them).

    Raises:
        FileNotFoundError: with the path, when the file does not exist.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (check model.init_from)")
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        return torch.load(path, map_location="cpu", weights_only=True)


def select_state_dict(
    obj: object, keys: tuple[str, ...] = CONTAINER_KEYS, source: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """The tensor dict inside a loaded checkpoint object: the first container key present, else the object."""
    for key in keys:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source} holds no state dict (found {type(obj).__name__})")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def read_state_dict(path: str | Path, keys: tuple[str, ...] = CONTAINER_KEYS) -> dict[str, torch.Tensor]:
    """The tensor dict of a checkpoint file, whatever container the file uses.

    Args:
        path: A Lightning ``.ckpt``, an official ``.pth`` or a bare state dict.
        keys: Container keys tried in order (the reference's ``--model_key model|module``).

    Raises:
        FileNotFoundError: with the path, when the file does not exist.
    """
    return select_state_dict(read_checkpoint(path), keys, source=str(path))


def strip_prefix(sd: Mapping[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Drop the first matching prefix of every key (e.g. Lightning's ``net.``, DDP's ``module.``)."""
    out = {}
    for k, v in sd.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p) :]
                break
        out[k] = v
    return out


def load_student_weights(
    model: nn.Module, path: str | Path, prefixes: tuple[str, ...] = ("net.", "module.")
) -> LoadReport:
    """Load every matching tensor of ``path`` into ``model`` (a pretraining student).

    Accepts this project's Lightning checkpoints (keys under ``state_dict`` with ``net.``) and the
    official VideoMAE/SMILE pretraining ``.pth`` files (keys under ``model``, SPEC §4.3 names).
    Teacher weights (``target.*``) are ignored.

    Raises:
        ValueError: when a tensor's shape differs from the model's (names every mismatch).
    """
    sd = {k: v for k, v in read_state_dict(path).items() if not k.startswith("target.")}
    sd = strip_prefix(sd, prefixes)
    own = model.state_dict()
    mismatched = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in sd.items()
        if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        raise ValueError(f"{path}: shape mismatch for {len(mismatched)} tensor(s): " + "; ".join(mismatched[:10]))
    return _report(path, sd, own, model.load_state_dict(sd, strict=False))


ENCODER_PREFIXES = ("net.encoder.", "net.", "module.", "encoder.", "backbone.")


def load_encoder_weights(
    encoder: nn.Module, path: str | Path, reinit: tuple[str, ...] = (), prefixes: tuple[str, ...] = ENCODER_PREFIXES
) -> LoadReport:
    """Initialise a classifier (``create_encoder``) from a pretraining or finetuned checkpoint.

    Accepts this project's pretraining ``.ckpt`` (``net.encoder.*``) and classifier ``.ckpt``
    (``net.*``), official VideoMAE/SMILE pretraining ``.pth`` (``encoder.*`` under ``model``) and
    official finetuned ``.pth`` (finetune keys under ``model`` or ``module``, possibly fp16), as
    the reference's ``--finetune`` conversion does (SPEC §4.4). From pretraining files only the
    encoder is read (decoder, bridge and mask token are dropped), its final ``norm`` is reported as
    unexpected; ``fc_norm`` / ``head`` are missing and keep their fresh initialisation.

    Args:
        encoder: The model to fill.
        path: Checkpoint file.
        reinit: Name prefixes whose tensors are re-initialised when their shapes differ (e.g.
            ``("head",)`` to finetune a K400 classifier on UCF101); other mismatches are refused.
        prefixes: Key prefixes stripped (first match) before matching.

    Raises:
        ValueError: on a shape mismatch not covered by ``reinit``.
    """
    sd = {k: v for k, v in read_state_dict(path).items() if not k.startswith("target.")}
    for enc in ("net.encoder.", "encoder."):  # a pretraining checkpoint: the encoder is all a classifier uses
        if any(k.startswith(enc) for k in sd):
            sd = {k: v for k, v in sd.items() if k.startswith(enc)}
            break
    sd = strip_prefix(sd, prefixes)
    own = encoder.state_dict()
    mismatched = {k for k, v in sd.items() if k in own and own[k].shape != v.shape}
    refused = sorted(k for k in mismatched if not k.startswith(tuple(reinit)))
    if refused:
        details = "; ".join(f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}" for k in refused[:10])
        raise ValueError(
            f"{path}: shape mismatch for {len(refused)} tensor(s): {details}. "
            "Pass the names to re-initialise (e.g. model.reinit=[head]) if that is intended."
        )
    sd = {k: v.to(own[k].dtype) if k in own else v for k, v in sd.items() if k not in mismatched}
    return _report(path, sd, own, encoder.load_state_dict(sd, strict=False))


def _report(path: str | Path, sd: dict, own: dict, result: nn.modules.module._IncompatibleKeys) -> LoadReport:
    """Log and return what a non-strict load did."""
    loaded = sorted(set(sd) & set(own))
    report = LoadReport(str(path), loaded, sorted(result.missing_keys), sorted(result.unexpected_keys))
    log.info("%s", report)
    return report
