"""``smile-bench data``: input-pipeline cost per clip (item, collate, device side) and workers needed."""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import torch

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
