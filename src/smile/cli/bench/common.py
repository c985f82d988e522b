"""Helpers every benchmark shares: timing, composing an experiment's config, printing a table."""

from __future__ import annotations

import time
from collections.abc import Callable
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


def _compose(overrides: list[str]) -> Any:
    """The training config of ``overrides``, as ``train.py`` would compose it (outputs under /tmp)."""
    from hydra import compose, initialize_config_dir

    from smile.build import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="train", overrides=["paths.output_dir=/tmp/smile-bench", *overrides])


def _print_table(title: str, rows: list[dict[str, Any]], context: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title}  ({', '.join(f'{k}={v}' for k, v in context.items())})")
    for col in rows[0]:
        table.add_column(col, justify="left" if col == "stage" else "right")
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    Console().print(table)
