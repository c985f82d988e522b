"""Per-step random streams: the reason overlays and masks are identical after a resume and across devices.

Every random draw the data module makes on the device (object trajectories and sprites, masks,
random backgrounds) comes from a generator that is a pure function of (seed, rank, step): nothing to
carry in checkpoints, the same draws in an uninterrupted and a resumed run, and, because trajectories
and masks are drawn for the global batch from rank-independent streams, W devices see what one device
with a W times larger batch sees.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["step_generator", "step_streams"]


def step_generator(seed: int, rank: int, step: int, device: torch.device) -> torch.Generator:
    """A generator that is a pure function of (seed, rank, batch counter).

    Masks drawn from it are identical in an uninterrupted and a resumed run, with no RNG state
    to carry in checkpoints, and different on every rank.
    """
    state = np.random.SeedSequence([seed, rank, step]).generate_state(1, dtype=np.uint64)[0]
    gen = torch.Generator(device=device)
    gen.manual_seed(int(state) & ((1 << 63) - 1))
    return gen


def step_streams(
    seed: int, step: int, rank: int, world: int, device: torch.device
) -> tuple[torch.Generator, torch.Generator, torch.Generator]:
    """(CPU generator for motion parameters, CPU generator for random backgrounds, device generator
    for masks) of one step.

    Motion parameters and masks are drawn for the global batch, so their streams are
    rank-independent; random backgrounds (``noise``) are drawn for this rank's clips only, from a
    stream of their own on each rank (one device: the motion's).
    """
    cpu = step_generator(seed, 0, step, torch.device("cpu"))
    background = cpu if world == 1 else step_generator(seed + 2, rank, step, torch.device("cpu"))
    dev = step_generator(seed + 1, 0, step, device)
    return cpu, background, dev
