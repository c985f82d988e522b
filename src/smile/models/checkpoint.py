"""Loading student weights from this project's checkpoints and from official VideoMAE/SMILE files.

Stage-2 pretraining starts from a stage-1 student (SPEC §4.4): every student weight is loaded,
unexpected keys are reported, and shape mismatches and missing weights are refused instead of
silently skipped (the reference's loader only printed them, SPEC §10.18): a load that matches
nothing would otherwise train from random weights with exit code 0. Files are read by
:func:`~smile.models.checkpoint_file.read_checkpoint` (weights only; one-line errors naming the file).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from smile.models.checkpoint_file import EXPECTED, SAFE_GLOBALS, CheckpointError, read_checkpoint

__all__ = [
    "SAFE_GLOBALS",
    "CheckpointError",
    "LoadReport",
    "check_fit",
    "check_same_keys",
    "load_encoder_weights",
    "load_student_weights",
    "read_checkpoint",
    "read_state_dict",
    "select_state_dict",
    "strip_prefix",
]

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


def select_state_dict(
    obj: object, keys: tuple[str, ...] = CONTAINER_KEYS, source: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """The tensor dict inside a loaded checkpoint object: the first container key present, else the object."""
    for key in keys:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: holds no state dict (found a {type(obj).__name__}); {EXPECTED}")
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
    """Load every tensor of ``path`` into ``model`` (a pretraining student); all of them must be there.

    Accepts this project's Lightning checkpoints (keys under ``state_dict`` with ``net.``) and the
    official VideoMAE/SMILE pretraining ``.pth`` files (keys under ``model``, SPEC §4.3 names).
    Teacher weights (``target.*``) are ignored. Stage 2 continues stage 1's student, so a student
    tensor the file lacks is an error: it would silently restart from random weights.

    Raises:
        CheckpointError: when a tensor's shape differs from the model's (names every mismatch), or
            when any student tensor is missing from the file (names the file, the count matched,
            and samples of the file's and the model's keys).
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
        raise CheckpointError(f"{path}: shape mismatch for {len(mismatched)} tensor(s): " + "; ".join(mismatched[:10]))
    report = _report(path, sd, own, model.load_state_dict(sd, strict=False))
    check_fit(report, sd, own, allowed_missing=set(), what="a pretraining student of this model")
    return report


ENCODER_PREFIXES = ("net.encoder.", "net.", "module.", "encoder.", "backbone.")
# What a classifier has and a pretraining encoder does not: they start fresh when finetuning begins.
CLASSIFIER_ONLY = ("fc_norm.", "head.")


def load_encoder_weights(
    encoder: nn.Module, path: str | Path, reinit: tuple[str, ...] = (), prefixes: tuple[str, ...] = ENCODER_PREFIXES
) -> LoadReport:
    """Initialise a classifier (``create_encoder``) from a pretraining or finetuned checkpoint.

    Accepts this project's pretraining ``.ckpt`` (``net.encoder.*``) and classifier ``.ckpt``
    (``net.*``), official VideoMAE/SMILE pretraining ``.pth`` (``encoder.*`` under ``model``) and
    official finetuned ``.pth`` (finetune keys under ``model`` or ``module``, possibly fp16), as
    the reference's ``--finetune`` conversion does (SPEC §4.4). From pretraining files only the
    encoder is read (decoder, bridge and mask token are dropped), its final ``norm`` is reported as
    unexpected; ``fc_norm`` / ``head`` are missing and keep their fresh initialisation. Any other
    missing tensor is an error: training would go on from random weights with exit code 0.

    Args:
        encoder: The model to fill.
        path: Checkpoint file.
        reinit: Name prefixes whose tensors are re-initialised when their shapes differ (e.g.
            ``("head",)`` to finetune a K400 classifier on UCF101); other mismatches are refused.
        prefixes: Key prefixes stripped (first match) before matching.

    Raises:
        CheckpointError: on a shape mismatch not covered by ``reinit``, or when a tensor other than
            the classifier's ``fc_norm`` / ``head`` (file without a head) or a re-initialised one is
            missing from the file.
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
        raise CheckpointError(
            f"{path}: shape mismatch for {len(refused)} tensor(s): {details}. "
            "Pass the names to re-initialise (e.g. model.reinit=[head]) if that is intended."
        )
    sd = {k: v.to(own[k].dtype) if k in own else v for k, v in sd.items() if k not in mismatched}
    report = _report(path, sd, own, encoder.load_state_dict(sd, strict=False))
    headless = not any(k.startswith(CLASSIFIER_ONLY) for k in sd)  # a pretraining encoder: a fresh head
    allowed = mismatched | ({k for k in own if k.startswith(CLASSIFIER_ONLY)} if headless else set())
    check_fit(report, sd, own, allowed, what="a pretraining or classifier checkpoint of this encoder")
    return report


def _sample(keys: Any, n: int = 6) -> str:
    """At most ``n`` keys, and how many more there are."""
    keys = sorted(keys)
    return ", ".join(keys[:n]) + (f", … (+{len(keys) - n})" if len(keys) > n else "") if keys else "none"


def check_fit(
    report: LoadReport, sd: Mapping[str, Any], own: Mapping[str, Any], allowed_missing: set[str], what: str
) -> None:
    """Refuse a load that left tensors other than ``allowed_missing`` at their initial values.

    Raises:
        CheckpointError: naming the file, how many tensors matched, the missing ones and samples of
            the file's and the model's keys (a wrong key layout shows in them at once).
    """
    missing = sorted(set(report.missing) - allowed_missing)
    if not missing:
        return
    raise CheckpointError(
        f"{report.path}: matched {len(report.loaded)} of the model's {len(own)} tensors; missing {len(missing)}: "
        f"{_sample(missing)}; the file's keys: {_sample(sd)}; the model's keys: {_sample(own)}. "
        f"Expected {what} (keys may carry a prefix: net., module., encoder.)"
    )


def check_same_keys(
    path: str | Path, sd: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor], what: str
) -> None:
    """Refuse, in one line, a file whose tensors are not exactly the model's (torch's report spans lines).

    Raises:
        CheckpointError: naming the file, the missing, unexpected and reshaped keys, and ``what`` was expected.
    """
    missing, extra = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    shapes = sorted(k for k in set(own) & set(sd) if own[k].shape != sd[k].shape)
    if missing or extra or shapes:
        raise CheckpointError(
            f"{path}: does not fit the model: missing {len(missing)}: {_sample(missing)}; unexpected {len(extra)}: "
            f"{_sample(extra)}; other shapes {len(shapes)}: {_sample(shapes)}; expected {what}"
        )


def _report(path: str | Path, sd: dict, own: dict, result: nn.modules.module._IncompatibleKeys) -> LoadReport:
    """Log and return what a non-strict load did."""
    loaded = sorted(set(sd) & set(own))
    report = LoadReport(str(path), loaded, sorted(result.missing_keys), sorted(result.unexpected_keys))
    log.info("%s", report)
    return report
