"""What a checkpoint was trained on, and a command's config checked against it.

Every checkpoint this project writes carries, under ``checkpoint["smile"]`` (written by
:class:`smile.callbacks.provenance.CheckpointProvenance`)::

    {"video": {"num_frames", "img_size", "patch_size", "tubelet_size", "sampling_rate"},
     "normalization": {"mean": [...], "std": [...]} | None,   # None: trained without a VideoDataModule
     "encoder": {"name": ..., "overrides": {...}},
     "class_names": [...] | None}          # a classifier's; None for pretraining

The sinusoid position table adapts to any clip, so a model evaluated at a geometry it was not
trained at runs and reports a wrong number without a word. :func:`adopt_provenance` makes a
command's config take the checkpoint's values where the user did not set them, and refuses, in
one line naming both values, a value the user set that contradicts the checkpoint (geometry and
normalisation may be allowed with ``allow_geometry_change=true``; the encoder never: the weights
decide it). Which values the user set comes from the command line's overrides; a library call
without them (``evaluate(cfg)``) treats every value of the config as set: any difference is refused.
Files without the key (older runs, official ``.pth``) keep the config's values, with an INFO line.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from smile.checks import ConfigError
from smile.models.checkpoint_file import read_checkpoint

log = logging.getLogger(__name__)

__all__ = [
    "ALLOW_KEY",
    "GEOMETRY_KEYS",
    "PROVENANCE_KEY",
    "ProvenanceMismatch",
    "adopt_provenance",
    "config_values",
    "differences",
    "geometry_from_flags",
    "overridden_keys",
    "plain",
    "provenance_of",
    "read_provenance",
    "warn_init_from",
]

PROVENANCE_KEY = "smile"
ALLOW_KEY = "allow_geometry_change"
GEOMETRY_KEYS = ("num_frames", "img_size", "patch_size", "tubelet_size", "sampling_rate")
# config keys whose difference allow_geometry_change=true accepts; the encoder's never is
ALLOWABLE = (*(f"video.{k}" for k in GEOMETRY_KEYS), "data.mean", "data.std")


class ProvenanceMismatch(ConfigError):
    """A config value set by the user that contradicts what the checkpoint was trained with."""


def provenance_of(obj: object) -> dict[str, Any] | None:
    """The provenance record of an already read checkpoint object, or None when it has none."""
    if isinstance(obj, Mapping) and isinstance(obj.get(PROVENANCE_KEY), Mapping):
        return dict(obj[PROVENANCE_KEY])
    return None


def read_provenance(path: str | Path) -> dict[str, Any] | None:
    """The provenance record of the checkpoint at ``path`` (read as weights only), or None.

    Raises:
        CheckpointError, FileNotFoundError: as :func:`~smile.models.checkpoint_file.read_checkpoint`.
    """
    return provenance_of(read_checkpoint(path))


def plain(value: Any) -> Any:
    """Config nodes, tuples -> plain dicts and lists (what ``torch.load(weights_only=True)`` reads back)."""
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _datamodule_default(name: str) -> list[float]:
    """``VideoDataModule``'s default ``mean`` / ``std``: what a data config without the key normalises with."""
    from smile.data.datamodule import VideoDataModule

    return [float(v) for v in inspect.signature(VideoDataModule).parameters[name].default]


def config_values(cfg: DictConfig) -> dict[str, Any]:
    """The values of ``cfg`` a provenance record describes, by config key (plain containers)."""
    values: dict[str, Any] = {f"video.{k}": cfg.video[k] for k in GEOMETRY_KEYS}
    for name in ("mean", "std"):
        configured = cfg.data[name] if name in cfg.data else None
        values[f"data.{name}"] = [float(v) for v in configured] if configured is not None else _datamodule_default(name)
    values["model.encoder.name"] = cfg.model.encoder.name
    values["model.encoder.overrides"] = plain(cfg.model.encoder.overrides)
    return values


def recorded_values(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The values of a provenance record by the config key they set."""
    values: dict[str, Any] = {f"video.{k}": provenance["video"][k] for k in GEOMETRY_KEYS}
    if provenance["normalization"] is not None:
        values.update({f"data.{k}": [float(v) for v in provenance["normalization"][k]] for k in ("mean", "std")})
    values["model.encoder.name"] = provenance["encoder"]["name"]
    values["model.encoder.overrides"] = dict(provenance["encoder"]["overrides"])
    return values


def differences(cfg: DictConfig, provenance: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, config value, checkpoint value)`` for each value where ``cfg`` and the checkpoint differ."""
    mine, theirs = config_values(cfg), recorded_values(provenance)
    return [(k, mine[k], theirs[k]) for k in theirs if plain(mine[k]) != plain(theirs[k])]


def overridden_keys(overrides: Sequence[str]) -> list[str]:
    """Config keys a command line sets: ``video.num_frames=8`` -> ``video.num_frames``; ``video=demo`` ->
    ``video`` (the whole group), ``model/encoder=vit_base`` -> ``model.encoder``; ``+``/``++``/``~`` dropped."""
    keys = []
    for item in overrides:
        key = item.split("=", 1)[0].strip().lstrip("+~").split("@", 1)[0]
        keys.append(key.replace("/", "."))
    return keys


def _is_set(key: str, overridden: Sequence[str] | None) -> bool:
    """Whether the user set ``key`` (None: a library call, every value counts as set)."""
    if overridden is None:
        return True
    return any(key == o or key.startswith(f"{o}.") for o in overridden)


def _refusal(found: list[tuple[str, Any, Any]], path: Path, where: str, allowable: bool) -> ProvenanceMismatch:
    """One line naming each contradicting value and the checkpoint's."""
    mine = " and ".join(f"{k}={plain(v)}" for k, v, _ in found)
    theirs = " and ".join(str(plain(v)) for _, _, v in found)
    plural = "s" if len(found) > 1 else ""
    fix = f"drop the override{plural}" if where == "on the command line" else "use the checkpoint's value" + plural
    allow = f", or add {ALLOW_KEY}=true to evaluate at another geometry" if allowable else ""
    return ProvenanceMismatch(f"{mine} {where} but {path} was trained with {theirs}: {fix}{allow}")


def _set(cfg: DictConfig, key: str, value: Any) -> None:
    """``cfg[key] = value`` for a dotted key, adding the key when the config does not have it (data.mean)."""
    parent_key, name = key.rsplit(".", 1)
    parent = OmegaConf.select(cfg, parent_key)
    with open_dict(parent):
        parent[name] = value


def adopt_provenance(
    cfg: DictConfig, path: str | Path, overrides: Sequence[str] | None = None
) -> dict[str, Any] | None:
    """Make ``cfg`` describe the clips and model ``path`` was trained on; returns its provenance record.

    Values the user did not set (not in ``overrides``) take the checkpoint's; values set that differ
    are refused, unless ``cfg.allow_geometry_change`` and they are geometry or normalisation (then kept,
    with a warning).

    Args:
        cfg: the command's composed config; changed in place.
        path: the checkpoint file.
        overrides: the command line's overrides (Hydra's ``overrides.task``); None = a library call:
            every value of ``cfg`` counts as set by the user.

    Raises:
        ProvenanceMismatch: one line naming the key, its value and the checkpoint's.
    """
    path = Path(path)
    provenance = read_provenance(path)
    if provenance is None:
        log.info("%s records no training geometry (an older run or an official file): using the config's", path)
        return None
    overridden = None if overrides is None else overridden_keys(overrides)
    where = "in the config" if overrides is None else "on the command line"
    found = [d for d in differences(cfg, provenance) if _is_set(d[0], overridden)]
    fixed = [d for d in found if d[0] not in ALLOWABLE or not cfg[ALLOW_KEY]]
    if fixed:
        raise _refusal(fixed, path, where, allowable=all(d[0] in ALLOWABLE for d in fixed))
    for key, mine, theirs in differences(cfg, provenance):
        if any(key == d[0] for d in found):
            log.warning("%s=%s although %s was trained with %s (%s=true)", key, plain(mine), path, theirs, ALLOW_KEY)
        else:
            log.info("%s=%s: what %s was trained with (the config said %s)", key, theirs, path, plain(mine))
            _set(cfg, key, theirs)
    return provenance


def warn_init_from(
    cfg: DictConfig, path: str | Path, class_names: Sequence[str] | None = None
) -> dict[str, Any] | None:
    """``model.init_from``: say where the run differs from what the initial weights were trained on.

    Starting from weights trained at another geometry (pretrain 16x224, finetune elsewhere) is
    legitimate, so nothing is refused: each difference is a warning naming both values (an INFO
    line for geometry and normalisation when ``allow_geometry_change=true`` says it is meant).
    Class names (``class_names``: the run's data's) that differ from the checkpoint's always warn.
    Returns the checkpoint's provenance record, None when it has none.
    """
    provenance = read_provenance(path)
    if provenance is None:
        log.info("model.init_from: %s records no training geometry (an older run or an official file)", path)
        return None
    for key, mine, theirs in differences(cfg, provenance):
        quiet = key in ALLOWABLE and cfg[ALLOW_KEY]
        log.log(
            logging.INFO if quiet else logging.WARNING,
            "model.init_from: %s=%s but %s was trained with %s%s",
            key,
            plain(mine),
            path,
            theirs,
            "" if quiet else f" (set {ALLOW_KEY}=true if that is meant)" if key in ALLOWABLE else "",
        )
    trained = provenance["class_names"]
    if class_names is not None and trained is not None and list(class_names) != list(trained):
        log.warning(
            "model.init_from: the data's %d classes (%s) are not the %d %s was trained on (%s)",
            len(class_names),
            _preview(class_names),
            len(trained),
            path,
            _preview(trained),
        )
    return provenance


def _preview(names: Sequence[str], count: int = 4) -> str:
    """The first ``count`` names, comma-separated, with ``...`` when there are more."""
    shown = ", ".join(str(n) for n in names[:count])
    return f"{shown}, ..." if len(names) > count else shown


def geometry_from_flags(
    provenance: Mapping[str, Any] | None, path: str | Path, flags: Mapping[str, tuple[str, Any]], allow: bool
) -> dict[str, Any]:
    """The clip geometry a command-line tool (``smile-vis``, ``smile-convert``) should use.

    Args:
        provenance: the checkpoint's record (None: nothing recorded, the flags alone decide).
        path: the checkpoint, for the message.
        flags: geometry key -> ``(flag name, value or None)``, e.g. ``{"num_frames": ("--frames", 4)}``.
        allow: ``--allow-geometry-change`` was given: a flag may contradict the checkpoint.

    Returns:
        geometry key -> value: each flag given, else the checkpoint's (keys neither has: absent).

    Raises:
        ProvenanceMismatch: a flag contradicts the checkpoint and ``allow`` is false.
    """
    recorded = dict(provenance["video"]) if provenance is not None else {}
    out = {k: v for k, v in recorded.items() if k in GEOMETRY_KEYS}
    for key, (flag, value) in flags.items():
        if value is None:
            continue
        if key in recorded and plain(value) != plain(recorded[key]):
            if not allow:
                raise ProvenanceMismatch(
                    f"{flag} {value} on the command line but {path} was trained with video.{key}={recorded[key]}: "
                    "drop the flag, or add --allow-geometry-change to use another geometry"
                )
            log.warning("%s %s although %s was trained with video.%s=%s", flag, value, path, key, recorded[key])
        out[key] = value
    return out
