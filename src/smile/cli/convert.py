"""``smile-convert``: checkpoints between this project, the official VideoMAE/SMILE layout and Hugging Face.

    smile-convert to-official CKPT OUT.pth [--ema]
    smile-convert from-official PTH OUT.pth
    smile-convert to-hf CKPT OUTDIR [--num-frames N] [--img-size S] [--num-heads H] [--ema] [--allow-geometry-change]
    smile-convert from-hf HFDIR OUT.pth
    smile-convert zoo

Inputs may be ``zoo:<name>`` (see ``smile-convert zoo``; ``--zoo-dir`` or ``$SMILE_ZOO_DIR`` says
where the files are). ``to-official`` detects a pretraining student or a finetuned classifier from
the keys and writes ``{"model": state_dict}`` like the reference; ``from-official`` writes a bare
state dict that our models and ``model.init_from`` load (fp16 DeepSpeed weights become fp32, the
pickled ``args`` are dropped). ``to-hf`` writes ``config.json`` + ``model.safetensors`` for
``transformers`` (a classifier as ``VideoMAEForVideoClassification``, a pretraining student's
encoder as ``VideoMAEModel``); the clip geometry is the one the checkpoint records it was trained
with (a contradicting flag is refused unless ``--allow-geometry-change``), else the flags, else the
zoo entry, else the run's config beside the checkpoint (``.hydra/config.yaml`` or a logger's ``hparams.yaml``), else
the ``args`` an official file carries. Every output is written to a temporary name first and
moved into place, so an interrupted conversion never leaves a half-written file.

Inputs are read as weights only, and a run config beside a checkpoint is checked by
:func:`smile.safe_config.check_targets` (it is only read here, never built). An unreadable or
refused input file exits with code 2 and one line naming it; other errors exit with 1.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

ZOO_DIR_HELP = "where zoo:<name> files are (default $SMILE_ZOO_DIR, else ~/.cache/smile/zoo)"
HF_HINT = "smile-convert to-hf/from-hf need Hugging Face transformers: pip install 'smile[hf]'"


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace`` it into place."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_input(spec: str, zoo_dir: str | None, ema: bool = False) -> tuple[dict[str, torch.Tensor], Any, Path]:
    """Tensors, the whole loaded object and the resolved path of a checkpoint (or ``zoo:<name>``)."""
    from smile.models.checkpoint import CheckpointError, read_checkpoint, select_state_dict
    from smile.zoo import get_entry, is_zoo, resolve

    path = resolve(spec, zoo_dir)
    try:
        obj = read_checkpoint(path)
    except CheckpointError as err:
        if not is_zoo(spec):
            raise
        raise CheckpointError(f"{spec}: {err}; download it again from {get_entry(spec).url}") from None
    if ema:
        if not (isinstance(obj, Mapping) and "ema_state_dict" in obj):
            raise ValueError(f"{path} has no EMA weights (ema_state_dict); drop --ema")
        return select_state_dict(obj["ema_state_dict"], (), str(path)), obj, path
    return select_state_dict(obj, source=str(path)), obj, path


def to_official(args: argparse.Namespace) -> int:
    from smile.models.convert import detect_kind, to_official

    sd, _, path = load_input(args.src, args.zoo_dir, args.ema)
    out = to_official(sd)
    atomic_save({"model": out}, args.dst)
    print(f"{path} -> {args.dst}: official {detect_kind(out)} layout, {len(out)} tensors")
    return 0


def from_official(args: argparse.Namespace) -> int:
    from smile.models.convert import detect_kind, from_official

    sd, _, path = load_input(args.src, args.zoo_dir)
    out = from_official(sd)
    atomic_save(out, args.dst)
    print(f"{path} -> {args.dst}: {detect_kind(out)} state dict, {len(out)} tensors")
    return 0


# ---- Hugging Face ------------------------------------------------------------------------------


def _require_transformers() -> Any:
    try:
        import transformers
    except ImportError as err:
        raise RuntimeError(HF_HINT) from err
    return transformers


def write_hf(
    sd: Mapping[str, torch.Tensor],
    geometry: Mapping[str, Any],
    outdir: str | Path,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Save our classifier / pretraining encoder as a ``transformers`` model directory.

    A classifier's ``id2label`` / ``label2id`` carry ``class_names`` (``class_<i>`` when None), so
    that a pipeline built from the directory answers with class names.
    """
    from smile.models.convert import hf_config, match_hf_names, to_hf

    transformers = _require_transformers()
    kwargs = hf_config(sd, **geometry)
    if kwargs.get("num_labels"):
        names = list(class_names) if class_names is not None else [f"class_{i}" for i in range(kwargs["num_labels"])]
        kwargs["id2label"] = dict(enumerate(names))
        kwargs["label2id"] = {name: i for i, name in enumerate(names)}
    config = transformers.VideoMAEConfig(**kwargs)
    cls = transformers.VideoMAEForVideoClassification if kwargs["use_mean_pooling"] else transformers.VideoMAEModel
    model = cls(config)
    model.load_state_dict(match_hf_names(to_hf(sd), set(model.state_dict())), strict=True)
    outdir = Path(outdir).expanduser()
    tmp = outdir.with_name(f".{outdir.name}.tmp{os.getpid()}")
    try:
        params = inspect.signature(model.save_pretrained).parameters  # transformers 4 asks, 5 always does
        model.save_pretrained(tmp, **({"safe_serialization": True} if "safe_serialization" in params else {}))
        outdir.mkdir(parents=True, exist_ok=True)
        for file in tmp.iterdir():
            os.replace(file, outdir / file.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return outdir


def to_hf_cmd(args: argparse.Namespace) -> int:
    sd, obj, path = load_input(args.src, args.zoo_dir, args.ema)
    from smile.cli.convert_geometry import find_class_names, find_geometry
    from smile.models.convert import detect_kind, student_state_dict

    student = student_state_dict(sd)
    enc = "encoder." if detect_kind(student) == "pretrain" else ""
    geometry = find_geometry(args, obj, path, student[f"{enc}patch_embed.proj.weight"].shape[0])
    num_labels = student["head.weight"].shape[0] if "head.weight" in student else 0
    names, where = find_class_names(obj, path, num_labels)
    out = write_hf(student, geometry, args.dst, names if num_labels else None)
    labels = f", id2label from {where}" if num_labels else ""
    print(f"{path} -> {out}: transformers VideoMAE, {geometry}{labels}")
    return 0


def read_hf_dir(directory: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``save_pretrained`` directory (``model.safetensors`` or ``pytorch_model.bin``)."""
    from smile.models.checkpoint import CheckpointError, read_state_dict

    directory = Path(directory).expanduser()
    file = directory / "model.safetensors"
    if file.is_file():
        try:
            from safetensors.torch import load_file
        except ImportError as err:
            raise RuntimeError(HF_HINT) from err
        try:
            return load_file(file)
        except Exception as err:  # safetensors' own error type (SafetensorError), OSError
            reason = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{file}: unreadable ({reason}); expected a safetensors file") from None
    if (directory / "pytorch_model.bin").is_file():
        return read_state_dict(directory / "pytorch_model.bin", keys=())
    raise FileNotFoundError(f"{directory} holds neither model.safetensors nor pytorch_model.bin (sharded: unsupported)")


def from_hf_cmd(args: argparse.Namespace) -> int:
    from smile.models.convert import from_hf

    out = from_hf(read_hf_dir(args.src))
    atomic_save(out, args.dst)
    print(f"{args.src} -> {args.dst}: {len(out)} tensors ({'classifier' if 'fc_norm.weight' in out else 'encoder'})")
    return 0


def zoo_cmd(args: argparse.Namespace) -> int:
    from smile.zoo import ZOO, zoo_dir

    root = zoo_dir(args.zoo_dir)
    print(f"zoo directory: {root}")
    for e in ZOO.values():
        state = "present" if (root / e.filename).is_file() else f"absent: download {e.url} as {root / e.filename}"
        print(f"zoo:{e.name:<36} {e.kind:<8} {e.model:<18} {state}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smile-convert", description="convert SMILE/VideoMAE checkpoints")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands = {
        "to-official": (to_official, "our .ckpt / state dict -> official {'model': ...} .pth", "OUT.pth"),
        "from-official": (from_official, "official .pth -> a state dict our models load", "OUT.pth"),
        "to-hf": (to_hf_cmd, "our checkpoint -> transformers VideoMAE directory", "OUTDIR"),
        "from-hf": (from_hf_cmd, "transformers VideoMAE directory -> our state dict", "OUT.pth"),
    }
    for name, (run, help_text, dst) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("src", metavar="HFDIR" if name == "from-hf" else "CKPT", help="input (or zoo:<name>)")
        p.add_argument("dst", metavar=dst)
        p.add_argument("--zoo-dir", default=None, help=ZOO_DIR_HELP)
        if name in ("to-official", "to-hf"):
            p.add_argument("--ema", action="store_true", help="export the EMA weights of a classifier .ckpt")
        if name == "to-hf":
            p.add_argument("--num-frames", type=int, default=None, help="clip length (default: from the run)")
            p.add_argument("--img-size", type=int, default=None, help="frame size (default: from the run)")
            p.add_argument("--num-heads", type=int, default=None, help="attention heads (default: from the size)")
            p.add_argument(
                "--allow-geometry-change",
                action="store_true",
                help="let --num-frames/--img-size differ from the geometry the checkpoint was trained with",
            )
        p.set_defaults(run=run)
    z = sub.add_parser("zoo", help="list the registered official checkpoints and whether each is cached")
    z.add_argument("--zoo-dir", default=None, help=ZOO_DIR_HELP)
    z.set_defaults(run=zoo_cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``smile-convert``; returns the exit code (2 for usage errors and refused or unreadable input
    files, 1 for conversion errors)."""
    from smile.models.checkpoint_file import CheckpointError
    from smile.provenance import ProvenanceMismatch
    from smile.safe_config import UnsafeConfigError

    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (CheckpointError, UnsafeConfigError, ProvenanceMismatch) as exc:
        print(f"smile-convert {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, KeyError, RuntimeError) as exc:
        print(f"smile-convert {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
