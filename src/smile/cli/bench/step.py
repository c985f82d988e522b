"""``smile-bench step``: training-step clips/s, achieved TFLOP/s and peak memory of an experiment."""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from smile.cli.bench.common import _compose, _print_table, _timed


def bench_step(overrides: list[str], steps: int, warmup: int, compile_model: bool) -> list[dict[str, Any]]:
    """Training-step throughput of the pretraining module an experiment builds (random inputs)."""
    import resource

    from hydra.utils import instantiate
    from torch.utils.flop_counter import FlopCounterMode

    from smile.build import build_pretrain_module
    from smile.data.datamodule import normalize_video
    from smile.lit.optim import param_groups

    cfg = _compose(overrides)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    module = build_pretrain_module(cfg).to(dev)
    module.train()
    if compile_model:
        module.net = torch.compile(module.net)  # type: ignore[assignment]  # a compiled module stands in for it
    masking = instantiate(cfg.data.masking)
    motion = instantiate(cfg.data.motion) if "motion" in cfg.data and cfg.data.motion else None
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


def _step_main(args: argparse.Namespace) -> int:
    rows = bench_step(args.overrides, args.steps, args.warmup, args.compile)
    _print_table("smile-bench step", rows, {"overrides": " ".join(args.overrides) or "-"})
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": "step", "overrides": args.overrides, "results": rows}, indent=2))
    return 0
