"""``smile-bench``: throughput of the project's hot paths, printed as a table and written as JSON.

``smile-bench motion`` times the SMILE augmentation on one device: trajectory sampling, batched
compositing of the objects and trajectory-aware masking (plus plain tube masking for scale), per clip.
``smile-bench step [overrides]`` times the training step of an experiment (random clips, masks,
overlay and teacher included): clips/s, achieved TFLOP/s from a FLOP count, and peak memory.
``smile-bench decode`` times decoding a pretraining clip (16 frames at stride 4 from a random window)
with each backend, per clip and per worker process.
``smile-bench data [overrides]`` times the input pipeline of an experiment: a training item
(decode or render, crop, augment) and the collate in one worker-like process (one torch thread, as
DataLoader workers run), the device-side ``on_after_batch_transfer`` (normalisation, SMILE object
motion, masks), and the DataLoader workers needed to feed ``--target-clips-per-s``.
"""

from __future__ import annotations

import argparse
import json
import math
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


def _compose(overrides: list[str]) -> Any:
    """The training config of ``overrides``, as ``train.py`` would compose it (outputs under /tmp)."""
    from hydra import compose, initialize_config_dir

    from smile.train import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="train", overrides=["paths.output_dir=/tmp/smile-bench", *overrides])


def bench_step(overrides: list[str], steps: int, warmup: int, compile_model: bool) -> list[dict[str, Any]]:
    """Training-step throughput of the pretraining module an experiment builds (random inputs)."""
    import resource

    from hydra.utils import instantiate
    from torch.utils.flop_counter import FlopCounterMode

    from smile.data.datamodule import normalize_video
    from smile.lit.optim import param_groups
    from smile.train import build_module

    cfg = _compose(overrides)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module = build_module(cfg).to(dev)
    module.train()
    if compile_model:
        module.net = torch.compile(module.net)
    masking = instantiate(cfg.data.masking)
    motion = instantiate(cfg.data.motion) if cfg.data.get("motion") else None
    b, v = cfg.data.batch_size, cfg.video
    clips = torch.randint(0, 256, (b, 3, v.num_frames, v.img_size, v.img_size), dtype=torch.uint8, device=dev)
    grid = (v.num_frames // v.tubelet_size, v.img_size // v.patch_size, v.img_size // v.patch_size)
    opt = torch.optim.AdamW(param_groups(module.net, 0.05), lr=1e-4, fused=dev.type == "cuda" or None)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else torch.autocast("cpu", enabled=False)

    def step() -> None:
        boxes, video = None, clips.float() / 255.0
        if motion is not None:
            video, boxes = motion(video)
        video = normalize_video(video, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        mask = masking(b, grid, device=dev, boxes=boxes, patch_size=v.patch_size)
        with amp:
            loss = module.compute_loss(video, mask)  # the module's own step: teacher once, every mask view
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    sec = _timed(step, dev, steps, warmup)
    peak = (
        torch.cuda.max_memory_allocated(dev) / 2**30
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    return [
        {
            "stage": f"train step ({cfg.name}, {dev.type})",
            "clips_per_s": b / sec,
            "ms_per_step": 1e3 * sec,
            "tflops": flops / sec / 1e12,
            "gflop_per_clip": flops / b / 1e9,
            "peak_mem_gib": peak,
        }
    ]


def bench_data(
    overrides: list[str], batches: int, device: str, target: float, seed: int = 0
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Input-pipeline cost of an experiment's training data, per clip; returns (rows, context).

    The data module is built as ``train.py`` builds it and its training items are fetched in this
    process (``data.num_workers`` plays no part: no DataLoader or worker is started), one item at a
    time in a shuffled order, with one torch thread (what each DataLoader worker gets). A worker's
    time per clip is item + collate (collate runs in the workers); the workers needed for
    ``target`` clips/s are ``ceil(target / worker clips/s)``. Then ``on_after_batch_transfer`` (with
    the host->device copy, from unpinned memory) runs on every collated batch on ``device`` with
    the process's threads, as in the training process, outside any trainer: masks come from the
    data module's evaluation stream, which costs the same as the training one. The worker side
    runs first for all batches (kept in memory) so the device side's idle CPU threads cannot slow
    it down. One untimed warm-up batch comes first. Clips count what the GPU receives (``B x
    num_sample`` with repeated augmentation).
    """
    from hydra.utils import instantiate
    from lightning.fabric.utilities.apply_func import move_data_to_device
    from torch.utils.data import default_collate

    cfg = _compose(overrides)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    dataset, collate = dm.train_dataset, dm.collate_fn or default_collate
    dev = torch.device(device)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    if len(order) < dm.batch_size * (batches + 1):
        raise ValueError(f"the dataset has {len(order)} items, fewer than {batches + 1} batches of {dm.batch_size}")
    threads = torch.get_num_threads()
    item_s, collate_s, device_s, clips = 0.0, 0.0, 0.0, 0
    collated: list[dict[str, Any]] = []
    torch.set_num_threads(1)  # as in a DataLoader worker
    try:  # the worker side first, so that the device side's idle CPU threads cannot slow it down
        for b in range(batches + 1):  # batch 0: warm-up
            start = time.perf_counter()
            items = [dataset[i] for i in order[b * dm.batch_size : (b + 1) * dm.batch_size]]
            fetched = time.perf_counter()
            collated.append(collate(items))
            if b:
                item_s += fetched - start
                collate_s += time.perf_counter() - fetched
    finally:
        torch.set_num_threads(threads)
    for b, batch in enumerate(collated):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        start = time.perf_counter()
        batch = dm.on_after_batch_transfer(move_data_to_device(batch, dev), 0)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if b:
            device_s += time.perf_counter() - start
            clips += batch["video"].shape[0]
    worker_s = item_s + collate_s
    workers = math.ceil(target / (clips / worker_s))  # the worker row's clips/s
    stages = {
        "dataset item (decode, augment)": item_s,
        "collate": collate_s,
        "worker = item + collate": worker_s,
        f"on_after_batch_transfer ({dev.type})": device_s,
    }
    rows = [
        {
            "stage": name,
            "ms_per_clip": 1e3 * sec / clips,
            "clips_per_s": clips / sec,
            "workers_for_target": workers if name.startswith("worker") else "-",
        }
        for name, sec in stages.items()
    ]
    context = {
        "experiment": cfg.name,
        "batch": dm.batch_size,
        "clips": clips,
        "device": dev.type,
        "threads": threads,  # of the device side (a worker has one)
        "motion": dm.motion is not None,
        "masking": type(dm.masking).__name__ if dm.masking is not None else None,
        "target_clips_per_s": target,
        "workers_needed": workers,
    }
    return rows, context


def bench_decode(videos: list[Path], backends: list[str], clips: int, frames: int, rate: int) -> list[dict[str, Any]]:
    """Milliseconds per pretraining clip (random 16 x 4 window) for each decoding backend."""
    import numpy as np

    from smile.data.decoding import read_clip
    from smile.data.sampling import pretrain_indices

    rows = []
    for backend in backends:
        rng = np.random.default_rng(0)
        times = []
        for i in range(clips):
            path = videos[i % len(videos)]
            start = time.perf_counter()
            frames_, _ = read_clip(path, lambda n, rng=rng: pretrain_indices(n, frames, rate, rng=rng), backend=backend)
            times.append(time.perf_counter() - start)
        ms = 1e3 * float(np.median(times))
        rows.append(
            {
                "stage": f"decode {backend}",
                "ms_per_clip": ms,
                "clips_per_s": 1e3 / ms,
                "frame_shape": "x".join(map(str, frames_.shape)),
            }
        )
    return rows


def _sample_video(out: Path, num_frames: int = 300, size: tuple[int, int] = (256, 340)) -> Path:
    """A Kinetics-like test clip (moving noise texture, H.264) when the user names no video."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (size[0] * 2, size[1] * 2, 3), dtype=np.uint8)
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        for k in range(num_frames):
            frame = texture[k % size[0] : k % size[0] + size[0], k : k + size[1]]
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


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
    st = sub.add_parser("step", help="training-step clips/s, TFLOP/s and peak memory of an experiment")
    st.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=smile_k400_vitb_stage1 ...")
    st.add_argument("--steps", type=int, default=5)
    st.add_argument("--warmup", type=int, default=2)
    st.add_argument("--compile", action="store_true", help="torch.compile the student")
    st.add_argument("--json", type=Path, default=None)
    d = sub.add_parser("decode", help="ms per pretraining clip for each decoding backend")
    d.add_argument("videos", nargs="*", type=Path, help="video files (default: a generated 10 s 340x256 H.264 clip)")
    d.add_argument("--backends", nargs="+", default=["decord", "pyav"])
    d.add_argument("--clips", type=int, default=20)
    d.add_argument("--frames", type=int, default=16)
    d.add_argument("--rate", type=int, default=4)
    d.add_argument("--json", type=Path, default=None)
    da = sub.add_parser("data", help="input pipeline per clip: dataset item, collate, device side; workers needed")
    da.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=demo or data=synthetic video=tiny")
    da.add_argument("--batches", type=int, default=4, help="timed batches (after one warm-up batch)")
    da.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    da.add_argument("--target-clips-per-s", type=float, default=400.0, help="training rate to feed (clips/s)")
    da.add_argument("--threads", type=int, default=0, help="torch CPU threads of the device side (0 = torch's default)")
    da.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "decode":
        return _decode_main(args)
    if args.command == "data":
        return _data_main(args)
    if args.command == "step":
        rows = bench_step(args.overrides, args.steps, args.warmup, args.compile)
        _print_table("smile-bench step", rows, {"overrides": " ".join(args.overrides) or "-"})
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(
                json.dumps({"command": "step", "overrides": args.overrides, "results": rows}, indent=2)
            )
        return 0
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


def _data_main(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, context = bench_data(args.overrides, args.batches, args.device, args.target_clips_per_s)
    shown = {k: context[k] for k in ("experiment", "batch", "clips", "device", "threads", "target_clips_per_s")}
    _print_table("smile-bench data (one worker process, one torch thread)", rows, shown)
    print(
        f"{context['workers_needed']} DataLoader worker(s) per device feed {args.target_clips_per_s:g} clips/s "
        f"(data.num_workers); the device side adds {rows[-1]['ms_per_clip']:.3f} ms per clip to the step."
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"command": "data", "overrides": args.overrides, "context": context, "results": rows}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


def _decode_main(args: argparse.Namespace) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        videos = args.videos or [_sample_video(Path(tmp) / "sample.mp4")]
        rows = bench_decode(videos, args.backends, args.clips, args.frames, args.rate)
    context = {"videos": len(videos), "clips": args.clips, "frames": args.frames, "rate": args.rate}
    _print_table("smile-bench decode (one process, one decoder thread)", rows, context)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": "decode", "context": context, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
