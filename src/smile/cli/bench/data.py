"""``smile-bench data``: input-pipeline cost per clip (item, collate, device side) and workers needed."""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import torch
from torch.utils.data import default_collate

from smile.cli.bench.common import _compose, _print_table


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
    num_sample`` with finetuning's repeated augmentation; ``batch_size`` clips from ``batch_size //
    repeats`` items with pretraining's repeated sampling).
    """
    from hydra.utils import instantiate
    from lightning.fabric.utilities.apply_func import move_data_to_device

    cfg = _compose(overrides)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    dataset, collate, items = dm.train_dataset, dm.train_collate or default_collate, dm.train_items_per_batch
    dev = torch.device(device)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    if len(order) < items * (batches + 1):
        raise ValueError(f"the dataset has {len(order)} items, fewer than {batches + 1} batches of {items}")
    threads = torch.get_num_threads()
    item_s, collate_s, device_s, clips = 0.0, 0.0, 0.0, 0
    collated: list[dict[str, Any]] = []
    torch.set_num_threads(1)  # as in a DataLoader worker
    try:  # the worker side first, so that the device side's idle CPU threads cannot slow it down
        for b in range(batches + 1):  # batch 0: warm-up
            start = time.perf_counter()
            fetched_items = [dataset[i] for i in order[b * items : (b + 1) * items]]
            fetched = time.perf_counter()
            collated.append(collate(fetched_items))
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


def bench_decode_stages(
    overrides: list[str], batches: int, target: float, baseline: bool, seed: int = 0
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-stage cost of one worker on a list of real videos (:mod:`smile.cli.bench.stages`): (rows, context).

    The data config is built as ``train.py`` builds it (``data=list data.train_dataset.list_file=...``
    or any experiment whose training data is a video list); the batch counts clips, so one batch
    takes ``batch_size // repeats`` videos. One torch thread, as in a DataLoader worker. ``ratio``
    in the context is the baseline's ms per clip over ours (how many times faster ours is).
    """
    from hydra.utils import instantiate

    from smile.cli.bench.stages import bench_stages

    dm = instantiate(_compose(overrides).data)
    ds = dm.train_dataset
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed)).tolist()
    order = order * (1 + dm.batch_size * (batches + 1) // len(order))  # a short list is cycled
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    try:
        collate = dm.train_collate or default_collate
        rows = bench_stages(ds, collate, order, dm.train_items_per_batch, batches, target, baseline)
    finally:
        torch.set_num_threads(threads)
    context: dict[str, Any] = {"videos": len(ds), "batch": dm.batch_size, "repeats": ds.repeats, "batches": batches}
    if baseline:
        context["ratio"] = rows[1]["total ms/clip"] / rows[0]["total ms/clip"]
    return rows, context


def _decodes_files(overrides: list[str]) -> bool:
    """Whether the composed training data is a list of video files (the stage bench applies)."""
    return "list_file" in _compose(overrides).data.train_dataset


def _stages_main(args: argparse.Namespace) -> int:
    baseline = bool(getattr(args, "baseline", False))
    rows, context = bench_decode_stages(args.overrides, args.batches, args.target_clips_per_s, baseline)
    _print_table("smile-bench data, real videos (one worker, one torch thread), ms per clip", rows, context)
    if baseline:
        print(f"ours is {context['ratio']:.2f}x the reference loader per worker core (same videos, one run)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"command": "data", "overrides": args.overrides, "context": context, "results": rows}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


def _data_main(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if _decodes_files(args.overrides):
        return _stages_main(args)
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
