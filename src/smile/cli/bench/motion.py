"""``smile-bench motion``: per-clip cost of each stage of the SMILE augmentation on one device."""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from smile.cli.bench.common import _print_table, _timed


def bench_motion(batch: int, frames: int, size: int, device: str, iters: int, ratio: float) -> list[dict[str, Any]]:
    """Per-clip milliseconds of each stage of the SMILE augmentation at the given geometry."""
    from smile.masking import TrajectoryMasking, tube_mask
    from smile.motion import ObjectBank, SyntheticMotion, sample_trajectories

    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    # inplace, as the data module runs it (it passes a temporary float copy of the uint8 batch)
    motion = SyntheticMotion(ObjectBank.procedural(num_objects=64, size=128, seed=0), inplace=True)
    video = torch.rand(batch, 3, frames, size, size, device=dev)
    grid = (frames // 2, size // 16, size // 16)
    boxes, _ = sample_trajectories(batch, frames, size, None, gen)
    boxes = boxes.to(dev)
    masking = TrajectoryMasking(ratio=ratio, masks_per_clip=1)
    stages = {
        "trajectories (CPU)": lambda: sample_trajectories(batch, frames, size, None, gen),
        "overlay: trajectories + compositing": lambda: motion(video, generator=gen),
        "trajectory mask (tube+traj_mask)": lambda: masking(batch, grid, generator=None, device=dev, boxes=boxes),
        "tube mask": lambda: tube_mask(batch, grid, ratio, device=dev),
    }
    rows = []
    for name, fn in stages.items():
        sec = _timed(fn, dev, iters)
        rows.append({"stage": name, "ms_per_clip": 1e3 * sec / batch, "clips_per_s": batch / sec})
    return rows


def _motion_main(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    context = {
        "device": args.device,
        "batch": args.batch,
        "frames": args.frames,
        "size": args.size,
        "threads": torch.get_num_threads(),
    }
    rows = bench_motion(args.batch, args.frames, args.size, args.device, args.iters, args.ratio)
    _print_table("smile-bench motion", rows, context)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": "motion", "context": context, "results": rows}, indent=2))
    return 0
