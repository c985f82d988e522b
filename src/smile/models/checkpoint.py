"""Loading student weights from this project's checkpoints and from official VideoMAE/SMILE files.

Stage-2 pretraining starts from a stage-1 student (SPEC §4.4): every student weight is loaded,
missing and unexpected keys are reported, and shape mismatches are refused instead of silently
skipped (the reference's loader only printed them, SPEC §10.18). Files are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

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


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensor dict of a checkpoint file, whatever container the file uses.

    Raises:
        FileNotFoundError: with the path, when the file does not exist.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (check model.init_from)")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in CONTAINER_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds no state dict (found {type(obj).__name__})")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


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
    result = model.load_state_dict(sd, strict=False)
    report = LoadReport(
        str(path), sorted(set(sd) & set(own)), sorted(result.missing_keys), sorted(result.unexpected_keys)
    )
    log.info("%s", report)
    return report
