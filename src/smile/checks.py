"""Refuse impossible config values before anything is built, naming the key, the value and the fix.

Without these checks a bad value surfaces late and under another name: ``data.masking.ratio=0.2``
on the tiny grid crashes inside the decoder after training started (``return_token_num=0``),
``video.tubelet_size=0`` is reported as ``target_dim=0``, a negative ``model.optimizer.lr`` as the
scaled lr. :func:`check_config` runs on the composed config, after :func:`~smile.build.explain_missing`
and before any object is instantiated, and raises :class:`ConfigError` with one line:
``<key>=<value>: <what is allowed>, e.g. <a valid override>``.

Keys a config must define are read so that their absence fails by name; keys that may be absent
(``data.masking`` for classifiers, trainer options Lightning defaults) are checked only when set.
Unset mandatory values (``???``) are skipped: :func:`~smile.build.explain_missing` reports those.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

from smile.masking import RandomMasking, TrajectoryMasking, TubeMasking, masked_count

__all__ = ["ConfigError", "check_config"]

MAX_SEED = 2**32 - 1  # numpy's and Lightning's seed bound

# (key, description, example) of each geometry value: positive ints
GEOMETRY = (
    ("video.num_frames", "frames per clip", 16),
    ("video.sampling_rate", "frame stride", 4),
    ("video.img_size", "pixels per side, or [H, W]", 224),
    ("video.patch_size", "pixels per token side", 16),
    ("video.tubelet_size", "frames per token", 2),
)


class ConfigError(ValueError):
    """An impossible config value; the message is one line that names the key and the fix."""


class _Skip:
    """Marker for a value not to check: unset (``???``) or an optional key that is absent."""


SKIP = _Skip()


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for the first impossible value of ``cfg``; return when all are valid.

    Args:
        cfg: the composed run config (``train.yaml`` / ``eval.yaml`` plus overrides).
    """
    geometry = _check_geometry(cfg)
    _check_data(cfg)
    _check_trainer(cfg)
    _check_optimisation(cfg)
    _check_masking(cfg, geometry)
    _check_detection(cfg, geometry)


def _check_detection(cfg: DictConfig, geometry: dict[str, Any] | None) -> None:
    """AVA: the loss, and the evaluation frames (``data.test_size``): an int or ``[H, W]`` the patches tile."""
    mode = _value(cfg, "model.loss_mode", required=False)
    if mode is not SKIP and mode not in ("sigmoid", "pose_softmax"):
        raise _fail("model.loss_mode", mode, "sigmoid or pose_softmax (README > Action detection (AVA))", "sigmoid")
    size = _value(cfg, "data.test_size", required=False)
    if size is SKIP or size is None or geometry is None:
        return
    sides = list(size) if OmegaConf.is_list(size) else [size]
    patch = geometry["patch_size"]

    def shown(values: list[Any]) -> Any:
        return values if len(values) > 1 else values[0]

    if len(sides) not in (1, 2) or not all(_is_int(v) and v >= 1 for v in sides):
        raise _fail("data.test_size", shown(sides), "an int or [H, W]", "[256,448]")
    if any(v % patch for v in sides):
        fixed = [max(v // patch, 1) * patch for v in sides]
        raise ConfigError(
            f"data.test_size={shown(sides)} is not a multiple of video.patch_size={patch} per side: "
            f"use e.g. data.test_size={shown(fixed)}"
        )


def _value(cfg: DictConfig, key: str, required: bool = True) -> Any:
    """The value at ``key``, or :data:`SKIP` when it is ``???`` or (``required=False``) absent.

    A required key that is absent raises: the check would otherwise pass a config that cannot run.
    """
    absent = object()
    try:
        value = OmegaConf.select(cfg, key, default=absent, throw_on_missing=True)
    except (MissingMandatoryValue, InterpolationToMissingValueError):
        return SKIP
    if value is absent:
        if required:
            raise ConfigError(
                f"{key} is not set: the config must define it (see configs/ and README > Config cheat sheet)"
            )
        return SKIP
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fail(key: str, value: Any, allowed: str, example: Any) -> ConfigError:
    return ConfigError(f"{key}={value!r}: must be {allowed}, e.g. {key}={example}")


def _int_at_least(cfg: DictConfig, key: str, low: int, what: str, example: Any, required: bool = True) -> Any:
    """The int at ``key`` (>= ``low``), or :data:`SKIP`; ``what`` says what the value counts."""
    value = _value(cfg, key, required)
    if value is not SKIP and (not _is_int(value) or value < low):
        allowed = "a positive int" if low == 1 else f"an int >= {low}"
        raise _fail(key, value, f"{allowed} ({what})", example)
    return value


def _shown(value: Any) -> Any:
    """A value as the user writes it: ``[H, W]`` for a pair."""
    return list(value) if isinstance(value, tuple) else value


def _img_size(cfg: DictConfig) -> Any:
    """``video.img_size``: a positive int, or ``[H, W]`` of positive ints (non-square clips, e.g. AVA's)."""
    value = _value(cfg, "video.img_size")
    if OmegaConf.is_list(value) or isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(_is_int(v) and v >= 1 for v in value):
            raise _fail("video.img_size", list(value), "a positive int or [H, W] of two positive ints", "[256,448]")
        kind = _value(cfg, "model.kind", required=False)
        if kind != "detect":
            raise ConfigError(
                f"video.img_size={list(value)}: non-square clips are for AVA detection (model=detector) only; "
                f"model.kind={kind} needs one int, e.g. video.img_size={min(value)}"
            )
        return tuple(int(v) for v in value)
    return _int_at_least(cfg, "video.img_size", 1, "pixels per side, or [H, W]", 224)


def _check_geometry(cfg: DictConfig) -> dict[str, Any] | None:
    """Positive ints, frames divisible by the tubelet, pixels by the patch; the values, or None if unset.

    ``img_size`` comes back as given: an int, or an ``(H, W)`` tuple.
    """
    values = {
        key: _img_size(cfg) if key == "video.img_size" else _int_at_least(cfg, key, 1, what, example)
        for key, what, example in GEOMETRY
    }
    if any(v is SKIP for v in values.values()):
        return None
    sides = values["video.img_size"] if isinstance(values["video.img_size"], tuple) else (values["video.img_size"],)
    checks = [("video.num_frames", values["video.num_frames"], "video.tubelet_size")]
    checks += [("video.img_size", side, "video.patch_size") for side in sides]
    for size, given, unit in checks:
        if given % values[unit]:
            lower = given // values[unit] * values[unit]
            options = " or ".join(str(v) for v in (lower, lower + values[unit]) if v > 0)
            raise ConfigError(
                f"{size}={_shown(values[size])} is not a multiple of {unit}={values[unit]}: tokens must tile the "
                f"clip, use e.g. {size}={options}"
                + (" per side" if size == "video.img_size" and len(sides) > 1 else "")
            )
    return {key.split(".")[1]: value for key, value in values.items()}


def _check_data(cfg: DictConfig) -> None:
    """Batch sizes, workers and the seed."""
    _int_at_least(cfg, "data.batch_size", 1, "clips per device per step", 8)
    eval_batch = _value(cfg, "data.eval_batch_size", required=False)
    if eval_batch is not None:
        _int_at_least(
            cfg, "data.eval_batch_size", 1, "clips per device in evaluation; null = data.batch_size", 2, False
        )
    _int_at_least(cfg, "data.num_workers", 0, "DataLoader worker processes per device", 4, required=False)
    seed = _value(cfg, "seed")
    if seed is not SKIP and (not _is_int(seed) or not 0 <= seed <= MAX_SEED):
        raise _fail("seed", seed, f"an int in [0, {MAX_SEED}]", 0)


def _check_trainer(cfg: DictConfig) -> None:
    """Lightning's loop lengths and accumulation, which Lightning itself reports without the key."""
    _int_at_least(cfg, "trainer.accumulate_grad_batches", 1, "batches per optimizer step", 1, required=False)
    _int_at_least(cfg, "trainer.num_nodes", 1, "machines", 1, required=False)
    for key, allowed, example in (
        ("trainer.max_steps", "-1 (no step limit) or an int >= 1", 1000),
        ("trainer.max_epochs", "null, -1 (no epoch limit) or an int >= 1", 10),
    ):
        value = _value(cfg, key, required=False)
        if value is SKIP or (value is None and key == "trainer.max_epochs"):
            continue
        if not _is_int(value) or value == 0 or value < -1:
            raise _fail(key, value, allowed, example)


def _check_optimisation(cfg: DictConfig) -> None:
    """The lr as configured (per 256 samples), before the global-batch scaling hides it."""
    lr = _value(cfg, "model.optimizer.lr")
    if lr is not SKIP and (not _is_number(lr) or not lr > 0):
        raise _fail("model.optimizer.lr", lr, "a number > 0 (the lr per 256 samples, before batch scaling)", "1.5e-4")
    min_lr = _value(cfg, "model.scheduler.min_lr", required=False)
    if min_lr is not SKIP and (not _is_number(min_lr) or min_lr < 0):
        raise _fail("model.scheduler.min_lr", min_lr, "a number >= 0 (the final lr per 256 samples)", "1e-5")


def _check_masking(cfg: DictConfig, geometry: dict[str, Any] | None) -> None:
    """Ratio, views and the exact masked / visible counts the masking gives on the configured grid."""
    masking = _value(cfg, "data.masking", required=False)
    if masking is SKIP or masking is None:
        return  # classifiers have no masking
    _int_at_least(cfg, "data.masking.masks_per_clip", 1, "mask views per clip", 2, required=False)
    unmask = _value(cfg, "data.masking.traj_unmask_ratio", required=False)
    if unmask is not SKIP and (not _is_number(unmask) or not 0 <= unmask < 1):
        raise _fail("data.masking.traj_unmask_ratio", unmask, "a number in [0, 1)", 0.1)
    ratio = _value(cfg, "data.masking.ratio", required=False)
    if ratio is SKIP:
        return
    if not _is_number(ratio) or not 0 < ratio < 1:
        raise _fail("data.masking.ratio", ratio, "a number in the open interval (0, 1)", 0.9)
    target = _value(cfg, "data.masking._target_", required=False)
    if geometry is not None and isinstance(target, str):
        _check_mask_counts(ratio, _masking_class(target), geometry)


def _masking_class(target: str) -> type | None:
    """The class a project masking ``_target_`` names; None for other targets (not imported here)."""
    module, _, name = target.rpartition(".")
    if not module.startswith("smile."):
        return None
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None  # a wrong target fails by name when the data module is built
    return cls if isinstance(cls, type) else None


def _check_mask_counts(ratio: float, cls: type | None, geometry: dict[str, Any]) -> None:
    """At least one masked and one visible token, counted exactly as the masking classes count them.

    Tube and trajectory masking mask ``t * int(ratio * h * w)`` tokens (``num_masked``), random
    masking ``int(ratio * t * h * w)``; tests/test_checks.py holds the two in step.
    """
    t = geometry["num_frames"] // geometry["tubelet_size"]
    size = geometry["img_size"]
    h, w = (s // geometry["patch_size"] for s in (size if isinstance(size, tuple) else (size, size)))
    sizes = f"video.img_size={_shown(size)}, video.patch_size={geometry['patch_size']}"
    if cls is not None and issubclass(cls, (TubeMasking, TrajectoryMasking)):
        n, where = h * w, f"per time slot on the {h}x{w} grid ({sizes})"
    elif cls is not None and issubclass(cls, RandomMasking):
        frames = f"video.num_frames={geometry['num_frames']}, video.tubelet_size={geometry['tubelet_size']}"
        n, where = t * h * w, f"of the {t}x{h}x{w} grid ({frames}, {sizes})"
    else:
        return  # a masking scheme this check does not know: its own validation applies
    masked = masked_count(ratio, n)
    if 1 <= masked <= n - 1:
        return
    head = f"data.masking.ratio={ratio} masks {masked} of the {n} tokens {where}"
    if n < 2:
        raise ConfigError(f"{head}: masking needs at least 2 tokens; raise video.img_size or lower video.patch_size")
    if masked < 1:
        low = next(j / 100 for j in range(1, 100) if masked_count(j / 100, n) >= 1)
        raise ConfigError(f"{head}: use a ratio that masks at least one token, e.g. >= {low}")
    high = next(j / 100 for j in range(99, 0, -1) if masked_count(j / 100, n) <= n - 1)
    raise ConfigError(f"{head}: use a ratio that leaves at least one token visible, e.g. <= {high}")
