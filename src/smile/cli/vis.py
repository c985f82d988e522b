"""``smile-vis``: what a pretrained student sees and predicts on one video.

    smile-vis CKPT VIDEO --out DIR [--config CFG] [--frames N] [--size S] [--mask-ratio R]
              [--objects K] [--seed 0] [--gif] [--fps 4] [--device cpu] [--allow-geometry-change]

Decodes the centre clip of VIDEO, resizes its short side to S and centre-crops S x S, pastes K
procedural SMILE objects along random trajectories (K = 0: none), masks it (trajectory-aware
with objects, else tube masking) and runs the checkpoint's masked autoencoder. Writes
``DIR/<video stem>.mp4`` (or ``.gif``) with the panels side by side per frame and
``DIR/<video stem>_strip.png`` (rows: original, with objects, masked, predicted [, teacher];
columns: frames). Pixel-target students show reconstructed pixels, feature-target students a PCA
colouring of the predicted features (teacher's features at visible tokens) and a teacher row.

The model is rebuilt from the run's config: ``--config``, else ``.hydra/config.yaml`` of the run
directory that holds ``checkpoints/``. Lightning ``.ckpt`` files of this project and official
VideoMAE/SMILE pretraining ``.pth`` files (with ``--config``) both load. The clip geometry and the
normalisation are the ones the checkpoint records it was trained with (:mod:`smile.provenance`);
a ``--frames``/``--size`` that contradicts them is refused unless ``--allow-geometry-change``.

Nothing from the folder runs code: the config is checked by :func:`smile.safe_config.check_targets`
before anything is built (only ``smile.*`` objects and the project's own third-party classes), the
model is built by :func:`smile.build.build_pretrain_module`, and the checkpoint is read as weights
only. A refused config or an unreadable checkpoint exits with code 2 and one line naming the file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, cast

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from smile.callbacks.render import frame_strip, render_panels, side_by_side, write_animation, write_png
from smile.models import MaskedAutoencoder
from smile.models.checkpoint_file import CheckpointError
from smile.provenance import ProvenanceMismatch, geometry_from_flags, read_provenance
from smile.safe_config import UnsafeConfigError, check_targets
from smile.video import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["build_parser", "find_config", "load_student", "main", "visualise"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smile-vis", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("ckpt", type=Path, help="pretraining checkpoint (.ckpt of this project, or an official .pth)")
    p.add_argument("video", type=Path, help="video file to visualise")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--config", type=Path, default=None, help="the run's config (default: <run>/.hydra/config.yaml)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default: the run's video.num_frames)")
    p.add_argument("--size", type=int, default=None, help="crop side in px (default: the run's video.img_size)")
    p.add_argument("--mask-ratio", type=float, default=None, help="masking ratio (default: the run's, else 0.9)")
    p.add_argument("--objects", type=int, default=2, help="synthetic objects to paste (0 = none)")
    p.add_argument("--seed", type=int, default=0, help="seed of objects, trajectories and masks")
    p.add_argument("--gif", action="store_true", help="write a GIF instead of an MP4")
    p.add_argument("--fps", type=float, default=4.0, help="frames per second of the animation")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--allow-geometry-change",
        action="store_true",
        help="let --frames/--size differ from the geometry the checkpoint records it was trained with",
    )
    return p


def find_config(ckpt: Path, config: Path | None = None) -> Path:
    """The run config for ``ckpt``: ``config`` if given, else ``.hydra/config.yaml`` of its run directory."""
    if config is not None:
        if not config.is_file():
            raise FileNotFoundError(f"config not found: {config}")
        return config
    candidates = [ckpt.parent.parent / ".hydra" / "config.yaml", ckpt.parent / ".hydra" / "config.yaml"]
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(map(str, candidates))
    raise FileNotFoundError(f"no run config for {ckpt}: looked for {looked}; pass --config <run>/.hydra/config.yaml")


def load_student(ckpt: Path, cfg: DictConfig) -> torch.nn.Module:
    """The ``PretrainLitModule`` of ``cfg`` with the weights of ``ckpt`` (strict), in eval mode."""
    from smile.build import build_pretrain_module
    from smile.models.checkpoint import check_same_keys, load_student_weights, read_state_dict

    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt}")
    if cfg.model.kind == "classify":
        raise ValueError(f"{ckpt}: a classifier run (model.kind=classify); smile-vis shows pretraining students")
    sd = read_state_dict(ckpt)  # before building: a bad file is refused without building a teacher
    module = build_pretrain_module(cfg)
    if any(k.startswith("net.") for k in sd):
        check_same_keys(ckpt, sd, module.state_dict(), "a pretraining checkpoint of the model the run config describes")
        module.load_state_dict(sd, strict=True)
    else:
        load_student_weights(module.net, ckpt)  # refuses a file that leaves any student tensor missing
    return module.eval()


def _run_config(args: argparse.Namespace, provenance: dict[str, Any] | None) -> DictConfig:
    """The run's config with the geometry the checkpoint records (``provenance``), then the flags'.

    A ``--frames``/``--size`` that contradicts the recorded geometry is refused unless
    ``--allow-geometry-change`` (the sinusoid positions would adapt without a word).
    """
    path = find_config(args.ckpt, args.config)
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        raise ValueError(f"{path}: not a run config (expected a mapping, got a list)")
    check_targets(cfg, path)  # before anything in it is built
    flags = {"num_frames": ("--frames", args.frames), "img_size": ("--size", args.size)}
    geometry = geometry_from_flags(provenance, args.ckpt, flags, args.allow_geometry_change)
    with open_dict(cfg):
        cfg.model.init_from = None  # the weights come from CKPT
        for key, value in geometry.items():
            cfg.video[key] = value
    return cfg


def _normalization(provenance: dict[str, Any] | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` the checkpoint's clips were normalised with; ImageNet's (the data module's
    default) when it records none."""
    recorded = provenance["normalization"] if provenance is not None else None
    if recorded is None:
        return tuple(IMAGENET_MEAN), tuple(IMAGENET_STD)
    return tuple(recorded["mean"]), tuple(recorded["std"])


def read_video(path: Path, frames: int, size: int, sampling_rate: int) -> torch.Tensor:
    """The centre clip of ``path``, short side resized to ``size`` and centre-cropped: uint8 ``[1, 3, T, S, S]``."""
    from functools import partial

    from smile.data.decoding import read_clip
    from smile.data.sampling import centre_clip_indices
    from smile.data.transforms import CenterCropClip, ShortSideResize

    choose = partial(centre_clip_indices, mode="dense", clip_len=frames, sampling_rate=sampling_rate)
    array, _ = read_clip(path, choose)  # [T, H, W, 3]
    clip = torch.from_numpy(array).permute(0, 3, 1, 2)  # [T, 3, H, W]
    clip = CenterCropClip(size)(ShortSideResize(size, antialias=True)(clip))  # [T, 3, S, S]
    return clip.permute(1, 0, 2, 3).unsqueeze(0).contiguous()  # [1, 3, T, S, S]


def overlay_and_mask(
    clip: torch.Tensor, objects: int, ratio: float, seed: int, patch_size: int, tubelet_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(clip with objects in [0, 1] [1, 3, T, S, S], mask bool [1, N])``, both determined by ``seed``."""
    from smile.masking import MaskGenerator, TrajectoryMasking, TubeMasking
    from smile.motion import ObjectBank, SyntheticMotion

    gen = torch.Generator().manual_seed(seed)
    video = clip.float() / 255.0
    boxes = None
    masking: MaskGenerator
    if objects > 0:
        motion = SyntheticMotion(ObjectBank.procedural(num_objects=64, size=64, seed=seed), {"num_objects": objects})
        video, boxes = motion(video, generator=gen)
        masking = TrajectoryMasking(ratio, masks_per_clip=1, second_view="independent")
    else:
        masking = TubeMasking(ratio)
    _, _, t, h, w = video.shape
    grid = (t // tubelet_size, h // patch_size, w // patch_size)
    mask = masking(1, grid, generator=gen, device="cpu", boxes=boxes, patch_size=patch_size)  # [1, 1, N]
    return video, mask[:, 0]


def visualise(args: argparse.Namespace) -> dict[str, Path]:
    """Run the whole command; returns ``{"strip": png, "animation": mp4|gif}``."""
    from smile.data.datamodule import normalize_video

    if not args.ckpt.is_file():
        raise FileNotFoundError(f"checkpoint not found: {args.ckpt}")
    provenance = read_provenance(args.ckpt)
    cfg = _run_config(args, provenance)
    module = load_student(args.ckpt, cfg).to(args.device)
    clip = read_video(args.video, cfg.video.num_frames, cfg.video.img_size, cfg.video.sampling_rate)
    ratio = args.mask_ratio or cfg.data.masking.ratio
    net, target = cast(MaskedAutoencoder, module.net), cast(torch.nn.Module, module.target)
    embed = net.encoder.patch_embed
    video01, mask = overlay_and_mask(clip, args.objects, ratio, args.seed, embed.patch_size, embed.tubelet_size)
    mean, std = _normalization(provenance)  # what the training clips were normalised with
    video = normalize_video(video01, mean, std).to(args.device)
    panels = render_panels(net, target, video, mask.to(args.device), mean, std, original=clip)
    clips = [p[0] for p in panels.values()]  # [3, T, S, S] each
    stem = args.video.stem
    out = {"strip": write_png(args.out / f"{stem}_strip.png", frame_strip(clips, labels=list(panels)))}
    animation = args.out / f"{stem}.{'gif' if args.gif else 'mp4'}"
    out["animation"] = write_animation(animation, side_by_side(clips), args.fps)
    return out


def main(argv: list[str] | None = None) -> int:
    """Console entry point; errors (missing checkpoint, unreadable video) exit with a message naming the file.

    A refused run config or checkpoint file returns 2 after one line on stderr; other errors exit 1.
    """
    from smile.data.decoding import VideoDecodeError

    args = build_parser().parse_args(argv)
    try:
        out = visualise(args)
    except (CheckpointError, UnsafeConfigError, ProvenanceMismatch) as err:
        print(f"smile-vis: error: {err}", file=sys.stderr, flush=True)
        return 2
    except (FileNotFoundError, VideoDecodeError, ValueError) as err:
        raise SystemExit(f"smile-vis: {err}") from None
    print(f"smile-vis: wrote {out['animation']} and {out['strip']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
