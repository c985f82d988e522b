"""Refuse a config read from a folder before anything in it is instantiated.

A run directory's ``.hydra/config.yaml`` (or a logger's ``hparams.yaml``) is data that travels with
checkpoints; ``hydra.utils.instantiate`` would call whatever ``_target_`` it names
(``builtins.open`` truncating a file, ``os.system``). :func:`check_targets` walks the whole config
and allows only what the project's own configs build: objects defined in ``smile`` (located, so
an alias such as ``smile.cli.convert.os.system`` is refused too) and the few third-party classes
the shipped configs name. ``hydra.utils.get_method``/``get_class`` are allowed with a ``path`` that
passes the same test.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = ["THIRD_PARTY_TARGETS", "UnsafeConfigError", "check_targets"]

# Every non-smile `_target_` of configs/ (`grep -rhn "_target_" configs | sort -u`), and the
# lightning classes a user may add next to them (loggers, callbacks, profilers are built the same way).
THIRD_PARTY_TARGETS = frozenset(
    {
        "torch.optim.AdamW",
        "lightning.Trainer",
        "lightning.pytorch.Trainer",
        "lightning.pytorch.loggers.CSVLogger",
        "lightning.pytorch.loggers.TensorBoardLogger",
        "lightning.pytorch.loggers.WandbLogger",
        "lightning.pytorch.callbacks.LearningRateMonitor",
        "lightning.pytorch.profilers.SimpleProfiler",
    }
)
GETTERS = frozenset({"hydra.utils.get_method", "hydra.utils.get_class"})


class UnsafeConfigError(ValueError):
    """A config names a ``_target_`` that a config read from a folder may not build."""


def _locate(path: str) -> Any:
    """The object a dotted ``smile.`` path names: the longest importable module, then attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def why_refused(target: object) -> str | None:
    """Why ``target`` may not be built from a folder's config, or None when it may."""
    if not isinstance(target, str):
        return f"a {type(target).__name__}, not a dotted name"
    if target in THIRD_PARTY_TARGETS or target in GETTERS:
        return None
    if not target.startswith("smile."):
        return "not a smile.* object nor one of the third-party classes the project's configs use"
    if any(part.startswith("_") for part in target.split(".")):
        return "names a private attribute"
    try:
        obj = _locate(target)
    except (ImportError, AttributeError) as err:
        return f"cannot be found ({err})"
    if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj)):
        return f"a {type(obj).__name__}, not a class or function"
    module = str(getattr(obj, "__module__", ""))
    if module != "smile" and not module.startswith("smile."):
        return f"is {module}.{getattr(obj, '__qualname__', '?')} seen through a smile module"
    return None


MAX_DEPTH = 64  # interpolations may build nodes (oc.create); a config deeper than this is refused


def _refuse(source: Path, key: str, target: object, reason: str) -> UnsafeConfigError:
    """The one-line error: file, key, target, why, and what to do."""
    return UnsafeConfigError(
        f"{source}: `{key}: {target}` is refused ({reason}); a config read from a folder may build only smile.* "
        "objects and the project's own third-party classes, and nothing was built. Fix or remove that key, or "
        "compose the run's config from configs/ with its overrides"
    )


def _value(node: DictConfig, key: str, where: str, source: Path) -> Any:
    """``node[key]`` as written; an interpolation is refused (it could name anything once resolved)."""
    if OmegaConf.is_interpolation(node, key):
        raw = node._get_node(key)._value()  # type: ignore[union-attr]
        raise _refuse(source, where, raw, "an interpolation, which could name anything once resolved")
    return node[key]


def _check_node(node: DictConfig, where: str, source: Path) -> None:
    """Check the ``_target_`` of one mapping (and the ``path`` a getter resolves)."""
    key = f"{where}_target_"
    target = _value(node, "_target_", key, source)
    reason = why_refused(target)
    if reason is None and target in GETTERS:
        key = f"{where}path"
        target = _value(node, "path", key, source) if "path" in node else None
        reason = why_refused(target) if target is not None else f"{node['_target_']} without a path"
    if reason is not None:
        raise _refuse(source, key, target, reason)


def _child(node: DictConfig | ListConfig, key: Any) -> Any:
    """A child node; an interpolation is resolved (it may build a node), None when it cannot resolve here."""
    if not OmegaConf.is_interpolation(node, key):
        return node._get_node(key)
    try:
        return node[key]
    except Exception:  # e.g. ${hydra:...} outside a Hydra run: nothing can be built from it either
        return None


def check_targets(cfg: Any, source: Path) -> None:
    """Raise before anything is built if any ``_target_`` in ``cfg`` is not allowed.

    Args:
        cfg: A loaded config (``OmegaConf.load``), checked in full: every mapping, every list, and
            what interpolations resolve to.
        source: The file it came from, named in the message.

    Raises:
        UnsafeConfigError: naming the file, the key and the target, and why it is refused.
    """

    def walk(node: Any, where: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise UnsafeConfigError(f"{source}: `{where.rstrip('.')}` is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, DictConfig):
            if "_target_" in node:
                _check_node(node, where, source)
            keys: list[Any] = list(node.keys())
        elif isinstance(node, ListConfig):
            keys = list(range(len(node)))
        else:
            return
        for key in keys:
            walk(_child(node, key), f"{where}{key}.", depth + 1)

    walk(cfg, "", 0)
