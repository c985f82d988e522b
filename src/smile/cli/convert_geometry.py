"""Where ``smile-convert to-hf`` finds the clip geometry, head count and class names of a checkpoint.

A geometry the checkpoint records it was trained with (``checkpoint["smile"]``, see
:mod:`smile.provenance`) decides; a flag that contradicts it is refused unless
``--allow-geometry-change``. Otherwise, in order: the command-line flags, the zoo entry, the run's
config beside the checkpoint (``.hydra/config.yaml`` or a logger's ``hparams.yaml``, checked by
:func:`smile.safe_config.check_targets` and only read, never built), the hyper-parameters stored in
a Lightning checkpoint, the ``args`` an official file carries, and last the width's model size.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["find_class_names", "find_geometry", "geometry_from_run_config"]


def _heads_of(name: Any) -> int | None:
    """Heads of a model size named like ours (``vit_base_patch16``) or the reference's (``..._base_...``)."""
    from smile.models import MODEL_SIZES

    if name in MODEL_SIZES:
        return MODEL_SIZES[name].num_heads
    for size in ("small", "base", "large", "huge"):
        if isinstance(name, str) and f"_{size}_" in f"_{name}_":
            return MODEL_SIZES[f"vit_{size}_patch16"].num_heads
    return None


def _select(cfg: Any, key: str) -> Any:
    """``cfg[key]`` (dotted), resolved; None when absent or when its interpolation cannot resolve here."""
    from omegaconf import OmegaConf

    try:
        value = OmegaConf.select(cfg, key, default=None)
    except Exception:  # e.g. ${hydra:...} outside a Hydra run
        return None
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def geometry_from_run_config(cfg: Any) -> dict[str, Any]:
    """``num_frames``, ``img_size``, ``num_heads`` of a run config (``video.*``, ``model.encoder.*``)."""
    from omegaconf import OmegaConf

    try:
        cfg = cfg if OmegaConf.is_config(cfg) else OmegaConf.create(dict(cfg))
    except Exception:  # hyper-parameters holding objects OmegaConf cannot represent
        return {}
    heads = _select(cfg, "model.encoder.overrides.num_heads") or _heads_of(_select(cfg, "model.encoder.name"))
    return {
        "num_frames": _select(cfg, "video.num_frames"),
        "img_size": _select(cfg, "video.img_size"),
        "num_heads": heads,
    }


def _run_configs(path: Path) -> list[Any]:
    """Configs saved by the run that wrote ``path`` (``<run>/checkpoints/x.ckpt``): Hydra's, then loggers'."""
    from omegaconf import DictConfig, OmegaConf

    from smile.safe_config import check_targets

    found = []
    for run_dir in (path.parent, path.parent.parent):
        for file in [run_dir / ".hydra" / "config.yaml", *sorted(run_dir.glob("*/version_*/hparams.yaml"))]:
            if file.is_file():
                cfg = OmegaConf.load(file)
                check_targets(cfg, file)  # only read here, but a folder's config naming code is refused
                found.append(cfg)
    return [c for c in found if isinstance(c, DictConfig)]


def find_geometry(args: argparse.Namespace, obj: Any, path: Path, embed_dim: int) -> dict[str, Any]:
    """Clip geometry and head count, from the first source that has each (see the module docstring)."""
    from smile.models import MODEL_SIZES
    from smile.provenance import geometry_from_flags, provenance_of
    from smile.zoo import get_entry, is_zoo

    provenance = provenance_of(obj)
    given = {"num_frames": ("--num-frames", args.num_frames), "img_size": ("--img-size", args.img_size)}
    chosen = geometry_from_flags(provenance, path, given, args.allow_geometry_change)  # flag, else recorded
    sources: list[dict[str, Any]] = [
        {"num_frames": chosen.get("num_frames"), "img_size": chosen.get("img_size"), "num_heads": args.num_heads}
    ]
    if provenance is not None:  # the encoder the checkpoint records: its size names the heads
        encoder = provenance["encoder"]
        sources.append({"num_heads": encoder["overrides"].get("num_heads") or _heads_of(encoder["name"])})
    if is_zoo(args.src):
        e = get_entry(args.src)
        sources.append({"num_frames": e.num_frames, "img_size": e.img_size, "num_heads": _heads_of(e.model)})
    sources += [geometry_from_run_config(c) for c in _run_configs(path)]
    if isinstance(obj, Mapping) and isinstance(obj.get("hyper_parameters"), Mapping):
        sources.append(geometry_from_run_config(obj["hyper_parameters"]))
    ref = obj.get("args") if isinstance(obj, Mapping) else None
    if ref is not None:  # the argparse.Namespace of the official training script
        sources.append(
            {k: getattr(ref, a, None) for k, a in (("num_frames", "num_frames"), ("img_size", "input_size"))}
        )
        sources[-1]["num_heads"] = _heads_of(getattr(ref, "model", None))
    sources.append({"num_heads": next((s.num_heads for s in MODEL_SIZES.values() if s.embed_dim == embed_dim), None)})
    out = {
        k: next((s[k] for s in sources if s.get(k) is not None), None) for k in ("num_frames", "img_size", "num_heads")
    }
    unknown = [k for k, v in out.items() if v is None]
    if unknown:
        flags = " ".join(f"--{k.replace('_', '-')} N" for k in unknown)
        raise ValueError(f"cannot infer {', '.join(unknown)} of {path} (no run config beside it); pass {flags}")
    if isinstance(out["img_size"], list | tuple):
        out["img_size"] = tuple(int(v) for v in out["img_size"])
    return out


def _names_in(obj: Any) -> list[str] | None:
    """Class names a checkpoint carries (top level or its hyper-parameters), if any."""
    from smile.provenance import provenance_of

    if not isinstance(obj, Mapping):
        return None
    hparams = obj["hyper_parameters"] if isinstance(obj.get("hyper_parameters"), Mapping) else {}
    for holder in (provenance_of(obj) or {}, obj, hparams):
        names = holder.get("class_names")
        if isinstance(names, list | tuple) and names:
            return [str(n) for n in names]
    return None


def _names_from_run(cfg: Any) -> list[str] | None:
    """Class names of a run config's training data (its index), when the data is still where the run read it."""
    from smile.data.classes import resolve_num_classes

    try:
        return resolve_num_classes(cfg)[1]
    except Exception:  # noqa: BLE001 - data moved, interpolations of another machine: fall back to class_<i>
        return None


def find_class_names(obj: Any, path: Path, num_labels: int) -> tuple[list[str], str]:
    """``(names, where from)`` for the exported ``id2label``: the checkpoint, the run's data, else ``class_<i>``.

    Names of another count than the head's outputs are passed over (they describe other data).
    """
    found = [(_names_in(obj), "the checkpoint")]
    found += [(_names_from_run(cfg), "the run's training data") for cfg in _run_configs(path)]
    for names, where in found:
        if names is not None and len(names) == num_labels:
            return names, where
    return [f"class_{i}" for i in range(num_labels)], "no names known: class_<i>"
