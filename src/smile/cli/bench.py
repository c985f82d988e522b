"""``smile-bench``: throughput of the project's hot paths, printed as a table and written as JSON.

``smile-bench motion`` times the SMILE augmentation on one device: trajectory sampling, batched
compositing of the objects and trajectory-aware masking (plus plain tube masking for scale), per clip.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def _timed(fn: Callable[[], Any], device: torch.device, iters: int, warmup: int = 1) -> float:
    """Median seconds per call of ``fn`` (synchronising CUDA around each call)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


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


def _print_table(title: str, rows: list[dict[str, Any]], context: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title}  ({', '.join(f'{k}={v}' for k, v in context.items())})")
    for col in rows[0]:
        table.add_column(col, justify="left" if col == "stage" else "right")
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``smile-bench``."""
    parser = argparse.ArgumentParser(prog="smile-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("motion", help="SMILE overlay + masking throughput on one device")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--ratio", type=float, default=0.8)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    raise SystemExit(main())
